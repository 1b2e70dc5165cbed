"""Command outcomes as the contract shows them, read from the table the worker writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import command_outcomes


@dataclass(frozen=True)
class BareOutcome:
    """The outcome of a command accepted with no events, as its notification tells it whole
    (the fields of a stored row that `outcome_body` reads)."""

    command_id: str
    position: str
    status: str = "accepted"
    reason: None = None
    events: list[Any] = field(default_factory=list)


def outcome_notice(payload: str) -> tuple[str, BareOutcome | None]:
    """The command id an outcomes notification names, and its whole outcome if it carries it."""
    command_id, _, position = payload.partition(" ")
    return command_id, BareOutcome(command_id, position) if position else None


def outcome_body(row: Any) -> dict[str, Any]:
    """The contract's outcome shape of a stored row.

    A rejection that names a call (`already_in_call`: the call the actor is already in) gives
    that `call_id`, so that a client can join the call that exists.
    """
    body: dict[str, Any] = {
        "command_id": row.command_id,
        "status": row.status,
        "position": row.position,
        "events": row.events,
    }
    if row.reason is not None:
        body["reason"] = row.reason
    named = rejected_call_id(row.events)
    if named is not None:
        body["call_id"] = named
    return body


def rejected_call_id(events: Any) -> str | None:
    """The `call_id` a recorded `command.rejected` names, if any."""
    for event in events if isinstance(events, list) else ():
        if isinstance(event, dict) and event.get("type") == "command.rejected":
            call_id = (event.get("data") or {}).get("call_id")
            return call_id if isinstance(call_id, str) else None
    return None


async def load_outcome(engine: AsyncEngine, command_id: str) -> Any | None:
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(command_outcomes).where(command_outcomes.c.command_id == command_id)
        )
        return result.first()


async def load_outcomes(engine: AsyncEngine, command_ids: Sequence[str]) -> dict[str, Any]:
    """command_id -> stored row, for those of `command_ids` that have one (one query)."""
    async with engine.connect() as conn:
        result = await conn.execute(
            sa.select(command_outcomes).where(command_outcomes.c.command_id.in_(command_ids))
        )
        return {str(row.command_id): row for row in result}
