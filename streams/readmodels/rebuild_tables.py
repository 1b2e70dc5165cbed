"""Shadow read-model tables for `chorus rebuild`: created empty beside the live ones, then
swapped in, in one transaction, while the live ones keep serving until that moment."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection

from streams.readmodels.store import NEXT, TABLES

# One rebuild at a time: a second one would drop the first one's shadow tables under it.
REBUILD_LOCK_KEY = 0x63686F7275730001  # "chorus" + 1


def create_shadow_tables(conn: Connection) -> None:
    """Empty `rm_*_next` tables shaped like the live ones (keys and indexes included)."""
    for table in TABLES:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}{NEXT}"))
        conn.execute(sa.text(f"CREATE TABLE {table}{NEXT} (LIKE {table} INCLUDING ALL)"))


def drop_shadow_tables(conn: Connection) -> None:
    """Remove what a failed rebuild left behind."""
    for table in TABLES:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}{NEXT}"))


def lock_live_tables(conn: Connection) -> None:
    """Stop writers of the live tables until the transaction ends; readers go on.

    EXCLUSIVE conflicts with the projector's row writes but not with plain SELECTs. The
    positions table comes first, as in every projector transaction, so neither waits on the
    other in a circle.
    """
    conn.execute(sa.text(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE"))


def swap_in_shadow_tables(conn: Connection) -> None:
    """Make the shadow tables the live ones and drop the old (visible at commit).

    Their indexes and keys, named after the shadow tables when `LIKE` copied them, are renamed
    to the names the migrations gave the live ones, so a later migration finds them.
    """
    for table in TABLES:
        conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {table}_old"))
        conn.execute(sa.text(f"ALTER TABLE {table}{NEXT} RENAME TO {table}"))
        conn.execute(sa.text(f"DROP TABLE {table}_old"))
        indexes = conn.execute(
            sa.text(
                "SELECT indexname FROM pg_indexes"
                " WHERE schemaname = current_schema() AND tablename = :table"
            ),
            {"table": table},
        ).scalars()
        for index in list(indexes):
            if index.startswith(f"{table}{NEXT}"):
                renamed = table + index.removeprefix(f"{table}{NEXT}")
                conn.execute(sa.text(f'ALTER INDEX "{index}" RENAME TO "{renamed}"'))


def try_rebuild_lock(conn: Connection) -> bool:
    """Take the session's rebuild lock, or False if another rebuild holds it."""
    taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": REBUILD_LOCK_KEY})
    return bool(taken.scalar_one())


def release_rebuild_lock(conn: Connection) -> None:
    conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": REBUILD_LOCK_KEY})
