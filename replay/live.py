"""The live read models (the rm_* tables the projector keeps), read once, consistently."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from db.engines import make_engine
from db.snapshots import snapshot_sync
from db.tables import quarantine, rm_calls, rm_members, rm_positions
from replay.bounds import ReplayError
from replay.diff import Snapshot


def read_live(url: str, team_id: str | None) -> dict[str, Snapshot]:
    """team_id -> its live read models, all read in one snapshot of the database.

    ReplayError when the database is down or has no read-model tables.
    """
    engine = make_engine(url)
    try:
        # Positions and bodies from the same instant.
        with snapshot_sync(engine) as conn:
            return _read(conn, team_id)
    except OperationalError as exc:
        raise ReplayError(f"the database at {_where(url)} is unreachable") from exc
    except DBAPIError as exc:
        raise ReplayError(
            f"the database at {_where(url)} has no readable read-model tables "
            f"(run `chorus init`): {exc.orig}"
        ) from exc
    finally:
        engine.dispose()


def read_positions(url: str, team_ids: Iterable[str]) -> dict[str, int]:
    """team_id -> its live position (0 for a team without one), for the teams asked."""
    wanted = list(team_ids)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(sa.cast(rm_positions.c.team_id, sa.Text), rm_positions.c.seq).where(
                    sa.cast(rm_positions.c.team_id, sa.Text).in_(wanted)
                )
            )
            found = {str(team): int(seq) for team, seq in rows}
    except OperationalError as exc:
        raise ReplayError(f"the database at {_where(url)} is unreachable") from exc
    finally:
        engine.dispose()
    return {team: found.get(team, 0) for team in wanted}


def read_quarantine(url: str, team_id: str | None) -> list[str]:
    """One line per quarantined record (of the team, or of all), in team and seq order."""
    engine = make_engine(url)
    query = sa.select(
        sa.cast(quarantine.c.team_id, sa.Text).label("team_id"),
        quarantine.c.seq,
        quarantine.c.type,
        quarantine.c.event_id,
        quarantine.c.reason,
    ).order_by(quarantine.c.team_id, quarantine.c.seq)
    try:
        with engine.connect() as conn:
            rows = conn.execute(_of_team(query, team_id)).all()
    except OperationalError as exc:
        raise ReplayError(f"the database at {_where(url)} is unreachable") from exc
    finally:
        engine.dispose()
    return [
        f"team {row.team_id}: seq {row.seq} ({row.type or '?'}, event {row.event_id or '?'}) "
        f"is quarantined: {row.reason}"
        for row in rows
    ]


def _read(conn: sa.Connection, team_id: str | None) -> dict[str, Snapshot]:
    teams: dict[str, Snapshot] = {}
    positions = _of_team(sa.select(rm_positions.c.team_id, rm_positions.c.seq), team_id)
    for team, seq in conn.execute(positions):
        teams[team] = Snapshot(int(seq), {}, {})
    members = sa.select(rm_members.c.team_id, rm_members.c.user_id, rm_members.c.body)
    for team, user_id, body in conn.execute(_of_team(members, team_id)):
        _team(teams, team).members[user_id] = _json(body)
    calls = sa.select(rm_calls.c.team_id, rm_calls.c.call_id, rm_calls.c.body)
    for team, call_id, body in conn.execute(_of_team(calls, team_id)):
        _team(teams, team).calls[call_id] = _json(body)
    return teams


def _of_team(query: sa.Select[Any], team_id: str | None) -> sa.Select[Any]:
    """The query's rows of one team, or of all teams when `team_id` is None."""
    if team_id is None:
        return query
    # Compared as text: an id that is no UUID matches nothing rather than failing.
    team = query.selected_columns.team_id
    return query.where(sa.cast(team, sa.Text) == team_id)


def _team(teams: dict[str, Snapshot], team_id: str) -> Snapshot:
    # Bodies without a position row are a difference too: show them at position 0.
    return teams.setdefault(team_id, Snapshot(0, {}, {}))


def _json(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {"(not an object)": body}


def _where(url: str) -> str:
    """Host and database of a URL, never its password."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
