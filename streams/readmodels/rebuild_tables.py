"""Shadow read-model tables for `chorus rebuild`: created empty beside the live ones, then
swapped in, in one transaction, while the live ones keep serving until that moment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from streams.readmodels.sql import LIVE, NEXT, read_model_tables

# One rebuild at a time: a second one would drop the first one's shadow tables under it.
REBUILD_LOCK_KEY = 0x63686F7275730001  # "chorus" + 1


def create_shadow_tables(conn: Connection) -> None:
    """Empty `rm_*_next` tables shaped like the live ones (keys and indexes included)."""
    for shadow in read_model_tables(NEXT):
        conn.execute(sa.schema.DropTable(shadow, if_exists=True))
        shadow.create(conn)


def drop_shadow_tables(conn: Connection) -> None:
    """Remove what a failed rebuild left behind."""
    for shadow in read_model_tables(NEXT):
        conn.execute(sa.schema.DropTable(shadow, if_exists=True))


def lock_live_tables(conn: Connection) -> None:
    """Stop writers of the live tables until the transaction ends; readers go on.

    EXCLUSIVE conflicts with the projector's row writes but not with plain SELECTs. The
    positions table comes first, as in every projector transaction, so neither waits on the
    other in a circle.
    """
    names = ", ".join(_quoted(conn, table.name) for table in read_model_tables(LIVE))
    conn.execute(sa.text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))


def swap_in_shadow_tables(conn: Connection) -> None:
    """Make the shadow tables the live ones and drop the old (visible at commit).

    Their keys and indexes, named after the shadow tables, are renamed to the names the
    migrations gave the live ones, so a later migration finds them.
    """
    for live, shadow in zip(read_model_tables(LIVE), read_model_tables(NEXT), strict=True):
        old = _quoted(conn, f"{live.name}_old")
        conn.execute(sa.text(f"ALTER TABLE {_quoted(conn, live.name)} RENAME TO {old}"))
        conn.execute(
            sa.text(
                f"ALTER TABLE {_quoted(conn, shadow.name)} RENAME TO {_quoted(conn, live.name)}"
            )
        )
        conn.execute(sa.text(f"DROP TABLE {old}"))
        for index in _index_names(shadow):
            renamed = live.name + index.removeprefix(shadow.name)
            conn.execute(
                sa.text(f"ALTER INDEX {_quoted(conn, index)} RENAME TO {_quoted(conn, renamed)}")
            )


def _index_names(table: sa.Table) -> list[str]:
    """The names of the table's indexes, those behind its keys included."""
    keys = [
        c for c in table.constraints if isinstance(c, sa.PrimaryKeyConstraint | sa.UniqueConstraint)
    ]
    return [str(item.name) for item in (*keys, *table.indexes)]


def _quoted(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def try_rebuild_lock(conn: Connection) -> bool:
    """Take the session's rebuild lock, or False if another rebuild holds it."""
    taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": REBUILD_LOCK_KEY})
    return bool(taken.scalar_one())


def release_rebuild_lock(conn: Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": REBUILD_LOCK_KEY})
