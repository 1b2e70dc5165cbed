"""Records appended commands as pending, in batches off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import command_outcomes

log = logging.getLogger(__name__)

MAX_BATCH = 500
_INSERT_PENDING = insert(command_outcomes).on_conflict_do_nothing()


class PendingRecorder:
    """Makes appended commands known to GET /v1/commands/{id} before they are decided.

    The request does not wait for this write: the decision (written by the worker) replaces
    the pending row, and until either exists the command reads as unknown for a moment.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pending-recorder")

    def record(self, command_id: str, team_id: str, actor: str, position: str) -> None:
        self._queue.put_nowait(
            {
                "command_id": command_id,
                "team_id": team_id,
                "actor": actor,
                "status": "pending",
                "position": position,
                "command_position": position,
                "events": [],
            }
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush(self._drain())

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._flush([first, *self._drain()])

    def _drain(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while not self._queue.empty() and len(rows) < MAX_BATCH:
            rows.append(self._queue.get_nowait())
        return rows

    async def _flush(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            async with self._engine.begin() as conn:
                # executemany: one cached statement whatever the batch size.
                await conn.execute(_INSERT_PENDING, rows)
        except Exception as exc:  # the database is down: the decisions will still be recorded
            log.warning("could not record %d pending commands: %s", len(rows), exc)
