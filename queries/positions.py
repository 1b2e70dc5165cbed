"""`?after=<position>`: read-your-writes, waiting (up to 10 s) for the read model to catch up."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from starlette.requests import Request

from db.tables import command_outcomes
from queries.hub import ChangeHub
from schemas.positions import CommandPosition, parse_position
from web.auth import resources_of
from web.errors import Problem

AFTER_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.005


async def wait_for_position(request: Request, team_id: str) -> None:
    """Return once the team's read model includes `?after=`; 504 after 10 s."""
    raw = request.query_params.get("after")
    if raw is None:
        return
    try:
        position = parse_position(raw)
    except ValueError as exc:
        raise Problem(400, "bad_position", f"{raw!r} is not a position Chorus gave") from exc
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AFTER_TIMEOUT_SECONDS
    if isinstance(position, CommandPosition):
        seq = await _decided_seq(request, team_id, position, deadline)
    else:
        seq = position
    hub: ChangeHub = resources_of(request).extras["hub"]
    if not await hub.reached(team_id, seq, max(0.0, deadline - loop.time())):
        raise _too_slow(raw)


async def _decided_seq(
    request: Request, team_id: str, position: CommandPosition, deadline: float
) -> int:
    """The team seq a command's decision reached, once it is decided."""
    text = f"c{position.partition}.{position.offset}"
    engine = resources_of(request).require_engine()
    loop = asyncio.get_running_loop()
    while True:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(command_outcomes.c.status, command_outcomes.c.position).where(
                        command_outcomes.c.command_position == text,
                        command_outcomes.c.team_id == team_id,
                    )
                )
            ).first()
        if row is not None and row.status != "pending":
            return int(row.position)
        if loop.time() >= deadline:
            raise _too_slow(text)
        await asyncio.sleep(POLL_SECONDS)


def _too_slow(position: str) -> Problem:
    return Problem(504, "timeout", f"the read model did not reach {position} within 10 s")
