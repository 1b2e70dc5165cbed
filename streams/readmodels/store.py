"""The read models in PostgreSQL: load a team's view, save what one step of it changed.

Tables (db/tables.py): `rm_positions` (team -> seq of its last applied event), `rm_members`
and `rm_calls` (`body`: the contract JSON), `rm_changes` (recent changes for live queries).
`save` writes a step in the caller's transaction, guarded by the team's stored position, so an
event applied twice (a redelivery after a crash, two workers during a rebalance) has one
effect, and it NOTIFYs `rm_changes` with `"<team_id>:<seq>"`, which PostgreSQL delivers at
commit. `suffix="_next"` addresses the shadow tables `chorus rebuild` fills.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Executable

from streams.projection import Change, TeamView, changes_horizon
from streams.readmodels.sql import CHANNEL, LIVE, NEXT, Statements, statements

__all__ = [
    "CHANNEL",
    "LIVE",
    "NEXT",
    "load_view",
    "save",
    "save_many",
    "storable",
    "table_generation",
    "trim_changes",
    "write_changes",
    "write_views",
]


def storable(team_id: str) -> bool:
    """True if the team id fits the tables (a UUID, as every team created over HTTP has)."""
    try:
        uuid.UUID(team_id)
    except ValueError:
        return False
    return True


def table_generation(conn: Connection, *, suffix: str = LIVE) -> int:
    """An id of the read-model tables now live; `chorus rebuild` swapping them changes it."""
    return int(conn.execute(statements(suffix).generation).scalar_one())


def load_view(
    conn: Connection, team_id: str, *, settled_calls: bool = True, suffix: str = LIVE
) -> TeamView:
    """The team's stored view (empty at seq 0 if none is stored).

    `settled_calls=False` leaves out ended calls whose room is released, which no event can
    change: what a projector needs to go on (`without_settled_calls`).
    """
    sql = statements(suffix)
    params = {"team": team_id}
    seq = conn.execute(sql.position, params).scalar_one_or_none()
    if seq is None:
        return TeamView(team_id=team_id)
    members = [row.body for row in conn.execute(sql.members, params)]
    calls = [
        row.body for row in conn.execute(sql.calls if settled_calls else sql.live_calls, params)
    ]
    return TeamView(
        team_id=team_id,
        seq=int(seq),
        members={member["user_id"]: member for member in members},
        calls={call["call_id"]: call for call in calls},
    )


def save(
    conn: Connection,
    before: TeamView,
    after: TeamView,
    changes: list[Change],
    *,
    generation: int | None = None,
    suffix: str = LIVE,
) -> bool:
    """Store the step from `before` to `after` in the caller's transaction; False if not.

    Writes the members and calls that differ, the changes and the new position, only if the
    stored position is still `before.seq` (and, given a `generation`, the tables are still
    those): otherwise the step was applied already, or `before` is stale, and nothing is
    written. The caller then reloads the view and projects again.
    """
    if after.seq <= before.seq:
        return False
    sql = statements(suffix)
    if not _advance(conn, sql, before, after, generation):
        return False
    team = after.team_id
    members = [(team, m) for k, m in after.members.items() if before.members.get(k) is not m]
    calls = [(team, c) for k, c in after.calls.items() if before.calls.get(k) is not c]
    _upsert(conn, sql, members, calls, [(team, change) for change in changes])
    horizon = changes_horizon(after.seq)
    if horizon > changes_horizon(before.seq):
        conn.execute(sql.trim, {"team": after.team_id, "upto": horizon})
    return True


def save_many(
    conn: Connection,
    steps: Sequence[tuple[TeamView, TeamView, list[Change]]],
    *,
    generation: int | None = None,
) -> list[bool]:
    """`save` for the steps of several teams (one step each) in the caller's transaction, with
    one statement per table for all of them; which were written.

    Each step is guarded on its own: a step found applied already or stale writes nothing and
    leaves the others written (its team's caller reloads and projects again).
    """
    sql = statements(LIVE)
    written, members, calls, changes = [], [], [], []
    for before, after, step_changes in steps:
        moved = after.seq > before.seq and _advance(conn, sql, before, after, generation)
        written.append(moved)
        if not moved:
            continue
        team = after.team_id
        members += [(team, m) for k, m in after.members.items() if before.members.get(k) is not m]
        calls += [(team, c) for k, c in after.calls.items() if before.calls.get(k) is not c]
        changes += [(team, change) for change in step_changes]
    _upsert(conn, sql, members, calls, changes)
    for (before, after, _), moved in zip(steps, written, strict=True):
        horizon = changes_horizon(after.seq)
        if moved and horizon > changes_horizon(before.seq):
            conn.execute(sql.trim, {"team": after.team_id, "upto": horizon})
    return written


def _advance(
    conn: Connection, sql: Statements, before: TeamView, after: TeamView, generation: int | None
) -> bool:
    """Move the team's stored position from `before.seq` to `after.seq` (and NOTIFY), if it is
    still there (and the tables are still those of `generation`)."""
    params = {
        "team": after.team_id,
        "new": after.seq,
        "old": before.seq,
        "gen": generation,
        "payload": f"{after.team_id}:{after.seq}",
    }
    return conn.execute(sql.advance if before.seq else sql.first, params).first() is not None


def write_views(conn: Connection, views: Iterable[TeamView], *, suffix: str = LIVE) -> None:
    """Upsert whole views: positions, members and calls (no guard: for tables no one else
    writes, such as the shadow tables of a rebuild)."""
    sql = statements(suffix)
    chosen = list(views)
    positions = [{"team": v.team_id, "new": v.seq} for v in chosen]
    members = [(v.team_id, m) for v in chosen for m in v.members.values()]
    calls = [(v.team_id, c) for v in chosen for c in v.calls.values()]
    _execute(conn, sql.upsert_position, positions)
    _upsert(conn, sql, members, calls, [])


def write_changes(
    conn: Connection, changes: Iterable[tuple[str, Change]], *, suffix: str = LIVE
) -> None:
    """Insert `(team_id, change)` rows (no guard, as `write_views`)."""
    _upsert(conn, statements(suffix), [], [], list(changes))


def trim_changes(conn: Connection, *, suffix: str = LIVE) -> None:
    """Forget every team's changes at or below its `changes_horizon`, as `save` does."""
    conn.execute(statements(suffix).trim_all)


def _upsert(
    conn: Connection,
    sql: Statements,
    members: list[tuple[str, dict[str, Any]]],
    calls: list[tuple[str, dict[str, Any]]],
    changes: list[tuple[str, Change]],
) -> None:
    member_rows = [{"team": t, "user_id": m["user_id"], "body": _json(m)} for t, m in members]
    call_rows = [
        {
            "team": t,
            "call_id": c["call_id"],
            "state": c["state"],
            "started_at": c["started_at"],
            "body": _json(c),
        }
        for t, c in calls
    ]
    change_rows = [
        {"team": t, "seq": c.seq, "kind": c.kind, "data": _json(c.data)} for t, c in changes
    ]
    _execute(conn, sql.member, member_rows)
    _execute(conn, sql.call, call_rows)
    _execute(conn, sql.change, change_rows)


def _execute(conn: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(statement, rows)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
