"""The SQL of the read-model store, for the live tables or the shadow ones of a rebuild."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
from sqlalchemy import TextClause

from db.engines import CHANGES_CHANNEL
from streams.projection import CHANGES_KEPT, CHANGES_TRIM_EVERY

#: The channel the store notifies; the payload is `"<team_id>:<seq>"`.
CHANNEL = CHANGES_CHANNEL
LIVE = ""
NEXT = "_next"
#: The read-model tables, in the order writers lock them (positions first).
TABLES = ("rm_positions", "rm_members", "rm_calls", "rm_changes")
_TEAM = "CAST(:team AS uuid)"


@dataclass(frozen=True)
class Statements:
    """The statements of one set of tables (live or shadow)."""

    generation: TextClause
    advance: TextClause
    first: TextClause
    upsert_position: TextClause
    position: TextClause
    members: TextClause
    calls: TextClause
    live_calls: TextClause
    member: TextClause
    call: TextClause
    change: TextClause
    trim: TextClause
    trim_all: TextClause


@cache
def statements(suffix: str) -> Statements:
    """The statements on the tables named with `suffix` (LIVE or NEXT)."""
    if suffix not in (LIVE, NEXT):
        raise ValueError(f"no read-model tables with suffix {suffix!r}")
    pos, mem, cal, chg = (f"{name}{suffix}" for name in TABLES)
    return Statements(**_positions(pos), **_reads(mem, cal), **_writes(mem, cal, chg, pos))


def _positions(pos: str) -> dict[str, TextClause]:
    gen = "CAST(:gen AS oid)"
    notify = f"RETURNING pg_notify('{CHANNEL}', CAST(:payload AS text))"
    return {
        "generation": sa.text(f"SELECT CAST('{pos}'::regclass AS oid)"),
        # Guarded: moves only from the position the caller's view was at, and only in the
        # tables that view was loaded from (after a rebuild they are other tables).
        "advance": sa.text(
            f"UPDATE {pos} SET seq = :new WHERE team_id = {_TEAM} AND seq = :old"
            f" AND ({gen} IS NULL OR tableoid = {gen}) {notify}"
        ),
        "first": sa.text(
            f"INSERT INTO {pos} (team_id, seq) SELECT {_TEAM}, :new"
            f" WHERE {gen} IS NULL OR {gen} = '{pos}'::regclass"
            f" ON CONFLICT (team_id) DO NOTHING {notify}"
        ),
        "upsert_position": sa.text(
            f"INSERT INTO {pos} (team_id, seq) VALUES ({_TEAM}, :new)"
            " ON CONFLICT (team_id) DO UPDATE SET seq = EXCLUDED.seq"
        ),
        "position": sa.text(f"SELECT seq FROM {pos} WHERE team_id = {_TEAM}"),
    }


def _reads(mem: str, cal: str) -> dict[str, TextClause]:
    return {
        "members": sa.text(f"SELECT body FROM {mem} WHERE team_id = {_TEAM}"),
        "calls": sa.text(f"SELECT body FROM {cal} WHERE team_id = {_TEAM}"),
        "live_calls": sa.text(
            f"SELECT body FROM {cal} WHERE team_id = {_TEAM}"
            " AND NOT (state = 'ended' AND body -> 'media' = 'null'::jsonb)"
        ),
    }


def _writes(mem: str, cal: str, chg: str, pos: str) -> dict[str, TextClause]:
    return {
        "member": sa.text(
            f"INSERT INTO {mem} (team_id, user_id, body)"
            f" VALUES ({_TEAM}, CAST(:user_id AS uuid), CAST(:body AS jsonb))"
            " ON CONFLICT (team_id, user_id) DO UPDATE SET body = EXCLUDED.body"
        ),
        "call": sa.text(
            f"INSERT INTO {cal} (call_id, team_id, state, started_at, body)"
            f" VALUES (CAST(:call_id AS uuid), {_TEAM}, :state, :started_at, CAST(:body AS jsonb))"
            " ON CONFLICT (call_id) DO UPDATE SET team_id = EXCLUDED.team_id,"
            " state = EXCLUDED.state, started_at = EXCLUDED.started_at, body = EXCLUDED.body"
        ),
        "change": sa.text(
            f"INSERT INTO {chg} (team_id, seq, kind, data)"
            f" VALUES ({_TEAM}, :seq, :kind, CAST(:data AS jsonb))"
            " ON CONFLICT (team_id, seq) DO UPDATE SET kind = EXCLUDED.kind, data = EXCLUDED.data"
        ),
        "trim": sa.text(f"DELETE FROM {chg} WHERE team_id = {_TEAM} AND seq <= :upto"),
        # changes_horizon in SQL (bigint division truncates, as // does for positive numbers).
        "trim_all": sa.text(
            f"DELETE FROM {chg} c USING {pos} p WHERE c.team_id = p.team_id AND c.seq <="
            f" (p.seq / {CHANGES_TRIM_EVERY}) * {CHANGES_TRIM_EVERY} - {CHANGES_KEPT}"
        ),
    }
