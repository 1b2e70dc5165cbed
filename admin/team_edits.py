"""Support edits of a team: remove a member, transfer the ownership. Each requires a reason and
writes one audit record (admin/audit.py).

A removed member's requests are refused once the services' membership caches forget them (at
most `auth.cache.MEMBERSHIP_TTL_SECONDS`); their tokens stay good for their other teams.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from admin.auth import operator_route
from admin.bodies import NewOwner, Reasoned
from admin.editing import edit_transaction, edited, record_edit
from db.tables import memberships, teams
from web.bodies import decode_body
from web.errors import Problem
from web.paths import path_uuid


async def remove_member(request: Request) -> Response:
    body = await decode_body(request, Reasoned)
    team_id = path_uuid(request, "team_id")
    user_id = path_uuid(request, "user_id")
    async with edit_transaction(request) as conn:
        team = await _locked_team(conn, team_id)
        await _role(conn, team_id, user_id)
        if team.owner_id == user_id:
            raise Problem(409, "is_owner", "the owner stays in the team; transfer it first")
        await conn.execute(
            sa.delete(memberships).where(
                memberships.c.team_id == team_id, memberships.c.user_id == user_id
            )
        )
        target = {"team_id": team_id, "user_id": user_id}
        record = await record_edit(request, conn, "team.member_remove", target, body.reason)
    return edited(record, team_id=team_id, user_id=user_id, removed=True)


async def transfer_owner(request: Request) -> Response:
    body = await decode_body(request, NewOwner)
    team_id = path_uuid(request, "team_id")
    try:
        new_owner = body_uuid(body.user_id)
    except ValueError as exc:
        raise Problem(404, "unknown_member", "no such member of this team") from exc
    async with edit_transaction(request) as conn:
        team = await _locked_team(conn, team_id)
        await _role(conn, team_id, new_owner)
        if team.owner_id == new_owner:
            raise Problem(409, "already_owner", "this member owns the team already")
        await conn.execute(
            sa.update(teams).where(teams.c.team_id == team_id).values(owner_id=new_owner)
        )
        for user_id, role in ((team.owner_id, "member"), (new_owner, "owner")):
            await conn.execute(
                sa.update(memberships)
                .where(memberships.c.team_id == team_id, memberships.c.user_id == user_id)
                .values(role=role)
            )
        record = await record_edit(
            request,
            conn,
            "team.owner_transfer",
            {"team_id": team_id, "user_id": new_owner},
            body.reason,
            {"previous_owner_id": team.owner_id},
        )
    return edited(record, team_id=team_id, owner_id=new_owner)


def body_uuid(text: str) -> str:
    """A UUID given in a body, in its canonical form (ValueError if it is none)."""
    return str(uuid.UUID(text))


async def _locked_team(conn: AsyncConnection, team_id: str) -> Any:
    team = (
        await conn.execute(sa.select(teams).where(teams.c.team_id == team_id).with_for_update())
    ).first()
    if team is None:
        raise Problem(404, "unknown_team", "no such team")
    return team


async def _role(conn: AsyncConnection, team_id: str, user_id: str) -> str:
    role = await conn.scalar(
        sa.select(memberships.c.role).where(
            memberships.c.team_id == team_id, memberships.c.user_id == user_id
        )
    )
    if role is None:
        raise Problem(404, "unknown_member", "no such member of this team")
    return str(role)


TEAM = "/v1/admin/teams/{team_id}"
routes = [
    operator_route(f"{TEAM}/members/{{user_id}}/remove", remove_member, ["POST"]),
    operator_route(f"{TEAM}/owner", transfer_owner, ["POST"]),
]
