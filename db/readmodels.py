"""Reads of the read-model tables, shared by the services that serve them (queries, admin)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import rm_calls, rm_members, rm_positions


async def team_position(conn: AsyncConnection, team_id: str) -> int:
    seq = (
        await conn.execute(sa.select(rm_positions.c.seq).where(rm_positions.c.team_id == team_id))
    ).scalar()
    return int(seq or 0)


async def presence_of(conn: AsyncConnection, team_id: str) -> dict[str, Any]:
    rows = await conn.execute(
        sa.select(rm_members.c.body)
        .where(rm_members.c.team_id == team_id)
        .order_by(rm_members.c.user_id)
    )
    return {"members": [row.body for row in rows]}


async def calls_of(conn: AsyncConnection, team_id: str, state: str | None) -> list[Any]:
    query = sa.select(rm_calls.c.body).where(rm_calls.c.team_id == team_id)
    if state is not None:
        query = query.where(rm_calls.c.state == state)
    rows = await conn.execute(query.order_by(rm_calls.c.started_at, rm_calls.c.call_id))
    return [row.body for row in rows]


#: The values of a calls read's `?state=` filter (None: every call).
CALL_STATES = ("active", "ended")


async def presence_answer(conn: AsyncConnection, team_id: str) -> dict[str, Any]:
    """The presence read model as the contract answers it: its position and the members."""
    position = await team_position(conn, team_id)
    return {"position": str(position), **await presence_of(conn, team_id)}


async def calls_answer(conn: AsyncConnection, team_id: str, state: str | None) -> dict[str, Any]:
    """The calls read model as the contract answers it: its position and the calls."""
    position = await team_position(conn, team_id)
    return {"position": str(position), "calls": await calls_of(conn, team_id, state)}
