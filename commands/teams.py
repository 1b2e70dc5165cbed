"""Teams and their members: owners add members by e-mail; members list their team."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.memberships import role_in_team
from commands.state import commands_state
from db.tables import memberships, teams, users
from schemas.bodies import NewMember, NewTeam
from web.auth import caller, unauthorized
from web.bodies import decode_body
from web.errors import Problem
from web.paths import path_uuid


async def create_team(request: Request) -> Response:
    user_id = caller(request)
    body = await decode_body(request, NewTeam)
    team_id = str(uuid.uuid4())
    try:
        async with commands_state(request).engine.begin() as conn:
            await conn.execute(
                sa.insert(teams).values(team_id=team_id, name=body.name, owner_id=user_id)
            )
            await conn.execute(
                sa.insert(memberships).values(team_id=team_id, user_id=user_id, role="owner")
            )
    except sa.exc.IntegrityError as exc:
        # The only reference is the owner: a validly signed token of a user who does not exist.
        raise unauthorized("the token's user does not exist") from exc
    return JSONResponse({"team_id": team_id}, status_code=201)


async def add_member(request: Request) -> Response:
    user_id = caller(request)
    team_id = path_uuid(request, "team_id")
    body = await decode_body(request, NewMember)
    async with commands_state(request).engine.begin() as conn:
        if await role_in_team(conn, team_id, user_id) != "owner":
            raise Problem(403, "not_owner", "only the team's owner adds members")
        member = (
            await conn.execute(
                sa.select(users.c.user_id).where(users.c.email == body.email.lower())
            )
        ).first()
        if member is None:
            raise Problem(404, "unknown_account", "no account has this e-mail")
        await conn.execute(
            insert(memberships)
            .values(team_id=team_id, user_id=member.user_id, role="member")
            .on_conflict_do_nothing()
        )
    return JSONResponse({"user_id": member.user_id}, status_code=201)


async def list_members(request: Request) -> Response:
    user_id = caller(request)
    team_id = path_uuid(request, "team_id")
    async with commands_state(request).engine.connect() as conn:
        await role_in_team(conn, team_id, user_id)
        rows = await conn.execute(
            sa.select(memberships.c.user_id, users.c.display_name, memberships.c.role)
            .join(users, users.c.user_id == memberships.c.user_id)
            .where(memberships.c.team_id == team_id)
            .order_by(memberships.c.joined_at, memberships.c.user_id)
        )
        members = [
            {"user_id": row.user_id, "display_name": row.display_name, "role": row.role}
            for row in rows
        ]
    return JSONResponse({"members": members})


routes = [
    Route("/v1/teams", create_team, methods=["POST"]),
    Route("/v1/teams/{team_id}/members", add_member, methods=["POST"]),
    Route("/v1/teams/{team_id}/members", list_members, methods=["GET"]),
]
