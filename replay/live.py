"""The live read models (the rm_* tables the projector keeps), read once, consistently."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from db.engines import make_engine
from replay.bounds import ReplayError
from replay.diff import Snapshot

# One team or all: a NULL :team matches every row.
_WHERE = "WHERE CAST(:team AS text) IS NULL OR team_id::text = CAST(:team AS text)"
_POSITIONS = sa.text(f"SELECT team_id::text, seq FROM rm_positions {_WHERE}")
_MEMBERS = sa.text(f"SELECT team_id::text, user_id::text, body FROM rm_members {_WHERE}")
_CALLS = sa.text(f"SELECT team_id::text, call_id::text, body FROM rm_calls {_WHERE}")


def read_live(url: str, team_id: str | None) -> dict[str, Snapshot]:
    """team_id -> its live read models, all read in one snapshot of the database.

    ReplayError when the database is down or has no read-model tables.
    """
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            # One REPEATABLE READ transaction: positions and bodies from the same instant.
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
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


def _read(conn: sa.Connection, team_id: str | None) -> dict[str, Snapshot]:
    params = {"team": team_id}
    teams: dict[str, Snapshot] = {}
    for team, seq in conn.execute(_POSITIONS, params):
        teams[team] = Snapshot(int(seq), {}, {})
    for team, user_id, body in conn.execute(_MEMBERS, params):
        _team(teams, team).members[user_id] = _json(body)
    for team, call_id, body in conn.execute(_CALLS, params):
        _team(teams, team).calls[call_id] = _json(body)
    return teams


def _team(teams: dict[str, Snapshot], team_id: str) -> Snapshot:
    # Bodies without a position row are a difference too: show them at position 0.
    return teams.setdefault(team_id, Snapshot(0, {}, {}))


def _json(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {"(not an object)": body}


def _where(url: str) -> str:
    """Host and database of a URL, never its password."""
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"
