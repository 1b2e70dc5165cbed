"""Read-model endpoints: rows of the read-model tables mapped to JSON, members only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.memberships import role_in_team, team_of_call
from db.readmodels import CALL_STATES, calls_answer, presence_answer
from db.snapshots import snapshot
from db.tables import rm_calls
from queries.positions import wait_for_position
from queries.state import QueriesState, queries_state
from web.auth import caller
from web.errors import Problem
from web.paths import path_uuid


async def ensure_member(conn: AsyncConnection, team_id: str, user_id: str) -> None:
    """404 for a team that does not exist, 403 for one the caller is not a member of."""
    await role_in_team(conn, team_id, user_id)


async def ensure_member_cached(state: QueriesState, team_id: str, user_id: str) -> None:
    """`ensure_member`, asking the database only the first time a member is seen."""
    # Remembered for a minute at most; an operator's removal of a member drops it at once
    # (auth/cache.forget_ended_memberships).
    if (team_id, user_id) in state.members:
        return
    async with state.engine.connect() as conn:
        state.members[team_id, user_id] = await role_in_team(conn, team_id, user_id)


async def _authorised_team(request: Request) -> str:
    user_id = caller(request)
    team_id = path_uuid(request, "team_id")
    await ensure_member_cached(queries_state(request), team_id, user_id)
    await wait_for_position(request, team_id)
    return team_id


async def get_presence(request: Request) -> Response:
    team_id = await _authorised_team(request)
    engine = queries_state(request).engine
    async with snapshot(engine) as conn:
        answer = await presence_answer(conn, team_id)
    return JSONResponse(answer)


async def get_calls(request: Request) -> Response:
    state = request.query_params.get("state")
    if state is not None and state not in CALL_STATES:
        raise Problem(422, "invalid_query", "state must be 'active' or 'ended'")
    team_id = await _authorised_team(request)
    engine = queries_state(request).engine
    async with snapshot(engine) as conn:
        answer = await calls_answer(conn, team_id, state)
    return JSONResponse(answer)


async def get_call(request: Request) -> Response:
    user_id = caller(request)
    call_id = path_uuid(request, "call_id")
    engine = queries_state(request).engine
    async with engine.connect() as conn:
        team_id = (
            await conn.execute(sa.select(rm_calls.c.team_id).where(rm_calls.c.call_id == call_id))
        ).scalar()
        if team_id is None:  # a call just started may not be projected yet: `?after=` waits
            team_id = await team_of_call(conn, call_id)
        await ensure_member(conn, str(team_id), user_id)
    await wait_for_position(request, str(team_id))
    async with engine.connect() as conn:
        body = (
            await conn.execute(sa.select(rm_calls.c.body).where(rm_calls.c.call_id == call_id))
        ).scalar()
    if body is None:
        raise Problem(404, "unknown_call", "no such call")
    return JSONResponse(body)


routes = [
    Route("/v1/teams/{team_id}/presence", get_presence, methods=["GET"]),
    Route("/v1/teams/{team_id}/calls", get_calls, methods=["GET"]),
    Route("/v1/calls/{call_id}", get_call, methods=["GET"]),
]
