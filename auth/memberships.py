"""Who belongs to which team: the one check every service makes before serving a team."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import call_directory, memberships, teams
from web.errors import Problem


async def role_in_team(conn: AsyncConnection, team_id: str, user_id: str) -> str:
    """The user's role in the team: 404 if the team does not exist, 403 if not a member."""
    row = (
        await conn.execute(
            sa.select(teams.c.team_id, memberships.c.role)
            .select_from(
                teams.outerjoin(
                    memberships,
                    sa.and_(
                        memberships.c.team_id == teams.c.team_id,
                        memberships.c.user_id == user_id,
                    ),
                )
            )
            .where(teams.c.team_id == team_id)
        )
    ).first()
    if row is None:
        raise Problem(404, "unknown_team", "no such team")
    if row.role is None:
        raise Problem(403, "not_a_member", "you are not a member of this team")
    return str(row.role)


async def team_of_call(conn: AsyncConnection, call_id: str) -> str:
    """The team a call belongs to (from the call directory the commands service keeps), or 404."""
    team_id = (
        await conn.execute(
            sa.select(call_directory.c.team_id).where(call_directory.c.call_id == call_id)
        )
    ).scalar()
    if team_id is None:
        raise Problem(404, "unknown_call", "no such call")
    return str(team_id)
