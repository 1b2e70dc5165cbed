"""Who belongs to which team: the one check every service makes before serving a team."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from web.errors import Problem

_UUID = postgresql.UUID(as_uuid=False)
_teams = sa.table("teams", sa.column("team_id", _UUID))
_memberships = sa.table(
    "memberships", sa.column("team_id", _UUID), sa.column("user_id", _UUID), sa.column("role")
)


async def role_in_team(conn: AsyncConnection, team_id: str, user_id: str) -> str:
    """The user's role in the team: 404 if the team does not exist, 403 if not a member."""
    row = (
        await conn.execute(
            sa.select(_teams.c.team_id, _memberships.c.role)
            .select_from(
                _teams.outerjoin(
                    _memberships,
                    sa.and_(
                        _memberships.c.team_id == _teams.c.team_id,
                        _memberships.c.user_id == user_id,
                    ),
                )
            )
            .where(_teams.c.team_id == team_id)
        )
    ).first()
    if row is None:
        raise Problem(404, "unknown_team", "no such team")
    if row.role is None:
        raise Problem(403, "not_a_member", "you are not a member of this team")
    return str(row.role)
