"""`?after=<position>`: read-your-writes, waiting (up to 10 s) for the read model to catch up."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request

from db.tables import command_outcomes
from queries.hub import RECHECK_SECONDS
from queries.state import QueriesState, queries_state
from schemas.positions import CommandPosition, parse_position
from web.errors import Problem

AFTER_TIMEOUT_SECONDS = 10.0


async def wait_for_position(request: Request, team_id: str) -> None:
    """Return once the team's read model includes `?after=`; 504 after 10 s."""
    raw = request.query_params.get("after")
    if raw is None:
        return
    try:
        position = parse_position(raw)
    except ValueError as exc:
        raise Problem(400, "bad_position", f"{raw!r} is not a position Chorus gave") from exc
    state = queries_state(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + AFTER_TIMEOUT_SECONDS
    if isinstance(position, CommandPosition):
        seq = await _decided_seq(state, team_id, position, deadline)
    else:
        seq = position
    if not await state.hub.reached(team_id, seq, max(0.0, deadline - loop.time())):
        raise _too_slow(raw)


async def _decided_seq(
    state: QueriesState, team_id: str, position: CommandPosition, deadline: float
) -> int:
    """The team seq a command's decision reached, once the worker has recorded it."""
    text = f"c{position.partition}.{position.offset}"
    loop = asyncio.get_running_loop()
    row = await _outcome(state, team_id, text)
    while not _decided(row):
        # The command's id is known once its pending row exists; until then any outcome wakes.
        with state.hub.decisions.waiting(None if row is None else row.command_id) as woken:
            # Read again now that the wait is registered: an outcome recorded since the last
            # read is seen here, one recorded after this read wakes the wait.
            row = await _outcome(state, team_id, text)
            if _decided(row):
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise _too_slow(text)
            # A notification lost while the listener reconnects is covered by looking again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken, min(remaining, RECHECK_SECONDS))
    return int(row.position)


def _decided(row: Any) -> bool:
    return row is not None and row.status != "pending"


async def _outcome(state: QueriesState, team_id: str, command_position: str) -> Any:
    async with state.engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(
                    command_outcomes.c.command_id,
                    command_outcomes.c.status,
                    command_outcomes.c.position,
                ).where(
                    command_outcomes.c.command_position == command_position,
                    command_outcomes.c.team_id == team_id,
                )
            )
        ).first()


def _too_slow(position: str) -> Problem:
    return Problem(504, "timeout", f"the read model did not reach {position} within 10 s")
