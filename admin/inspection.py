"""Read-only views for operators: accounts with their teams, teams with their members, a team's
presence and calls (the read models), and a command's outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin.auth import operator_route
from admin.state import admin_state
from db.outcomes import load_outcome, outcome_body
from db.readmodels import CALL_STATES, calls_answer, presence_answer
from db.snapshots import snapshot
from db.tables import memberships, teams, users
from web.errors import Problem
from web.paths import path_uuid


def instant(value: datetime) -> str:
    """A stored time as the contract writes instants (UTC, milliseconds, Z)."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def find_account(request: Request) -> Response:
    email = request.query_params.get("email")
    if not email:
        raise Problem(422, "invalid_query", "give ?email=<address> (or ask /accounts/<id>)")
    return await _account(request, users.c.email == email.lower(), "no account with this e-mail")


async def get_account(request: Request) -> Response:
    user_id = path_uuid(request, "user_id")
    return await _account(request, users.c.user_id == user_id, "no such account")


async def _account(request: Request, where: sa.ColumnElement[bool], missing: str) -> Response:
    engine = admin_state(request).engine
    async with snapshot(engine) as conn:
        account = (
            await conn.execute(
                sa.select(
                    users.c.user_id,
                    users.c.email,
                    users.c.display_name,
                    users.c.created_at,
                    users.c.disabled_at,
                    users.c.erased_at,
                ).where(where)
            )
        ).first()
        if account is None:
            raise Problem(404, "unknown_account", missing)
        rows = await conn.execute(
            sa.select(
                teams.c.team_id,
                teams.c.name,
                teams.c.owner_id,
                memberships.c.role,
                memberships.c.joined_at,
            )
            .select_from(memberships.join(teams, teams.c.team_id == memberships.c.team_id))
            .where(memberships.c.user_id == account.user_id)
            .order_by(memberships.c.joined_at, teams.c.team_id)
        )
        account_teams = [
            {
                "team_id": row.team_id,
                "name": row.name,
                "owner_id": row.owner_id,
                "role": row.role,
                "joined_at": instant(row.joined_at),
            }
            for row in rows
        ]
    return JSONResponse(
        {
            "user_id": account.user_id,
            "email": account.email,
            "display_name": account.display_name,
            "created_at": instant(account.created_at),
            "disabled": account.disabled_at is not None,
            "disabled_at": None if account.disabled_at is None else instant(account.disabled_at),
            "erased": account.erased_at is not None,
            "teams": account_teams,
        }
    )


async def get_team(request: Request) -> Response:
    team_id = path_uuid(request, "team_id")
    async with snapshot(admin_state(request).engine) as conn:
        team = await _team(conn, team_id)
        rows = await conn.execute(
            sa.select(
                users.c.user_id,
                users.c.email,
                users.c.display_name,
                memberships.c.role,
                memberships.c.joined_at,
            )
            .select_from(memberships.join(users, users.c.user_id == memberships.c.user_id))
            .where(memberships.c.team_id == team_id)
            .order_by(memberships.c.joined_at, users.c.user_id)
        )
        members = [
            {
                "user_id": row.user_id,
                "email": row.email,
                "display_name": row.display_name,
                "role": row.role,
                "joined_at": instant(row.joined_at),
            }
            for row in rows
        ]
    return JSONResponse(
        {
            "team_id": team.team_id,
            "name": team.name,
            "owner_id": team.owner_id,
            "created_at": instant(team.created_at),
            "members": members,
        }
    )


async def get_presence(request: Request) -> Response:
    team_id = path_uuid(request, "team_id")
    async with snapshot(admin_state(request).engine) as conn:
        await _team(conn, team_id)
        answer = await presence_answer(conn, team_id)
    return JSONResponse(answer)


async def get_calls(request: Request) -> Response:
    state = request.query_params.get("state")
    if state is not None and state not in CALL_STATES:
        raise Problem(422, "invalid_query", "state must be 'active' or 'ended'")
    team_id = path_uuid(request, "team_id")
    async with snapshot(admin_state(request).engine) as conn:
        await _team(conn, team_id)
        answer = await calls_answer(conn, team_id, state)
    return JSONResponse(answer)


async def get_command(request: Request) -> Response:
    command_id = path_uuid(request, "command_id")
    row = await load_outcome(admin_state(request).engine, command_id)
    if row is None:
        raise Problem(404, "unknown_command", "no such command")
    # Operators see what a member sees, and whose command it was, in which team, and when.
    return JSONResponse(
        {
            **outcome_body(row),
            "team_id": row.team_id,
            "actor": row.actor,
            "command_position": row.command_position,
            "decided_at": instant(row.decided_at),
        }
    )


async def _team(conn: AsyncConnection, team_id: str) -> Any:
    team = (await conn.execute(sa.select(teams).where(teams.c.team_id == team_id))).first()
    if team is None:
        raise Problem(404, "unknown_team", "no such team")
    return team


routes = [
    operator_route("/v1/admin/accounts", find_account, ["GET"]),
    operator_route("/v1/admin/accounts/{user_id}", get_account, ["GET"]),
    operator_route("/v1/admin/teams/{team_id}", get_team, ["GET"]),
    operator_route("/v1/admin/teams/{team_id}/presence", get_presence, ["GET"]),
    operator_route("/v1/admin/teams/{team_id}/calls", get_calls, ["GET"]),
    operator_route("/v1/admin/commands/{command_id}", get_command, ["GET"]),
]
