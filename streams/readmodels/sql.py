"""The statements of the read-model store, on the live tables or the shadow ones of a rebuild.

The tables are the catalogue's (db/tables.py); the shadow tables `chorus rebuild` fills are
copies of them named `<table>_next`, so no column is written down twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Executable
from sqlalchemy.dialects import postgresql

from db.engines import CHANGES_CHANNEL
from db.tables import JSONB, UUID, rm_calls, rm_changes, rm_members, rm_positions
from streams.projection import CHANGES_KEPT, CHANGES_TRIM_EVERY

#: The channel the store notifies; the payload is `"<team_id>:<seq>"`.
CHANNEL = CHANGES_CHANNEL
LIVE = ""
NEXT = "_next"


class ReadModelTables(NamedTuple):
    """One set of read-model tables, in the order writers lock them (positions first)."""

    positions: sa.Table
    members: sa.Table
    calls: sa.Table
    changes: sa.Table


_SHADOWS = sa.MetaData()


def _shadow(table: sa.Table) -> sa.Table:
    """The catalogue's table copied under the name `<table>_next`, its keys and indexes named
    as PostgreSQL would name them for that table (the swap renames them back)."""
    name = table.name + NEXT
    copy = table.to_metadata(_SHADOWS, name=name)
    items: list[sa.Constraint | sa.Index] = [*copy.constraints, *copy.indexes]
    for item in items:
        if isinstance(item.name, str) and item.name.startswith(table.name):
            item.name = name + item.name.removeprefix(table.name)
    return copy


_LIVE_TABLES = ReadModelTables(rm_positions, rm_members, rm_calls, rm_changes)
_SHADOW_TABLES = ReadModelTables(*(_shadow(table) for table in _LIVE_TABLES))


def read_model_tables(suffix: str) -> ReadModelTables:
    """The live tables (LIVE) or the shadow ones of a rebuild (NEXT)."""
    if suffix == LIVE:
        return _LIVE_TABLES
    if suffix == NEXT:
        return _SHADOW_TABLES
    raise ValueError(f"no read-model tables with suffix {suffix!r}")


@dataclass(frozen=True)
class Statements:
    """The statements of one set of tables (live or shadow)."""

    generation: Executable
    advance: Executable
    first: Executable
    upsert_position: Executable
    position: Executable
    members: Executable
    calls: Executable
    live_calls: Executable
    member: Executable
    call: Executable
    change: Executable
    trim: Executable
    trim_all: Executable


@cache
def statements(suffix: str) -> Statements:
    """The statements on the tables named with `suffix` (LIVE or NEXT)."""
    pos, mem, cal, chg = read_model_tables(suffix)
    return Statements(**_positions(pos), **_reads(mem, cal), **_writes(mem, cal, chg, pos))


# Parameters the store passes: the team, the old and new seq, the tables' generation (or
# None), the notification payload; row values for the writes.
_TEAM = sa.bindparam("team", type_=UUID)
_GEN = sa.cast(sa.bindparam("gen"), postgresql.OID)


def _oid_of(table: sa.Table) -> ColumnElement[int]:
    """The table's oid: what `tableoid` holds in its rows."""
    return sa.cast(sa.cast(sa.literal(table.name, sa.Text), postgresql.REGCLASS), postgresql.OID)


def _positions(pos: sa.Table) -> dict[str, Executable]:
    notify = sa.func.pg_notify(CHANNEL, sa.cast(sa.bindparam("payload"), sa.Text))
    insert = postgresql.insert(pos)
    return {
        "generation": sa.select(_oid_of(pos)),
        # Guarded: moves only from the position the caller's view was at, and only in the
        # tables that view was loaded from (after a rebuild they are other tables).
        "advance": sa.update(pos)
        .values(seq=sa.bindparam("new"))
        .where(
            pos.c.team_id == _TEAM,
            pos.c.seq == sa.bindparam("old"),
            sa.or_(_GEN.is_(None), sa.literal_column("tableoid") == _GEN),
        )
        .returning(notify),
        "first": insert.from_select(
            [pos.c.team_id, pos.c.seq],
            sa.select(_TEAM, sa.bindparam("new")).where(
                sa.or_(_GEN.is_(None), _oid_of(pos) == _GEN)
            ),
        )
        .on_conflict_do_nothing(index_elements=[pos.c.team_id])
        .returning(notify),
        "upsert_position": insert.values(
            team_id=_TEAM, seq=sa.bindparam("new")
        ).on_conflict_do_update(index_elements=[pos.c.team_id], set_={"seq": insert.excluded.seq}),
        "position": sa.select(pos.c.seq).where(pos.c.team_id == _TEAM),
    }


def _reads(mem: sa.Table, cal: sa.Table) -> dict[str, Executable]:
    calls = sa.select(cal.c.body).where(cal.c.team_id == _TEAM)
    # An ended call whose room is released: no event can change it any more.
    settled = sa.and_(
        cal.c.state == "ended", cal.c.body.op("->")("media") == _json(sa.literal("null"))
    )
    return {
        "members": sa.select(mem.c.body).where(mem.c.team_id == _TEAM),
        "calls": calls,
        "live_calls": calls.where(sa.not_(settled)),
    }


def _writes(mem: sa.Table, cal: sa.Table, chg: sa.Table, pos: sa.Table) -> dict[str, Executable]:
    member = postgresql.insert(mem).values(
        team_id=_TEAM, user_id=sa.bindparam("user_id"), body=_json(sa.bindparam("body"))
    )
    call = postgresql.insert(cal).values(
        call_id=sa.bindparam("call_id"),
        team_id=_TEAM,
        state=sa.bindparam("state"),
        started_at=sa.bindparam("started_at"),
        body=_json(sa.bindparam("body")),
    )
    change = postgresql.insert(chg).values(
        team_id=_TEAM,
        seq=sa.bindparam("seq"),
        kind=sa.bindparam("kind"),
        data=_json(sa.bindparam("data")),
    )
    return {
        "member": member.on_conflict_do_update(
            index_elements=[mem.c.team_id, mem.c.user_id], set_={"body": member.excluded.body}
        ),
        "call": call.on_conflict_do_update(
            index_elements=[cal.c.call_id],
            set_={
                "team_id": call.excluded.team_id,
                "state": call.excluded.state,
                "started_at": call.excluded.started_at,
                "body": call.excluded.body,
            },
        ),
        "change": change.on_conflict_do_update(
            index_elements=[chg.c.team_id, chg.c.seq],
            set_={"kind": change.excluded.kind, "data": change.excluded.data},
        ),
        "trim": sa.delete(chg).where(chg.c.team_id == _TEAM, chg.c.seq <= sa.bindparam("upto")),
        # changes_horizon in SQL (bigint division truncates, as // does for positive numbers).
        "trim_all": sa.delete(chg).where(
            chg.c.team_id == pos.c.team_id,
            chg.c.seq <= (pos.c.seq // CHANGES_TRIM_EVERY) * CHANGES_TRIM_EVERY - CHANGES_KEPT,
        ),
    }


def _json(text: ColumnElement[str]) -> ColumnElement[object]:
    """JSON the store serialised itself (orjson), as jsonb."""
    return sa.cast(sa.type_coerce(text, sa.Text), JSONB)
