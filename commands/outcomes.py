"""Command outcomes: read from the table the worker writes, awaited through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engines import OUTCOMES_CHANNEL
from db.outcomes import load_outcome

log = logging.getLogger(__name__)

CHANNEL = OUTCOMES_CHANNEL


async def load_decided(engine: AsyncEngine, command_id: str) -> Any | None:
    row = await load_outcome(engine, command_id)
    return None if row is None or row.status == "pending" else row


class OutcomeWaiter:
    """Wakes requests that wait (`Prefer: wait=N`) when the worker records their outcome."""

    def __init__(self, engine: AsyncEngine, database_url: str) -> None:
        self._engine = engine
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="outcome-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, command_id: str, timeout: float) -> Any | None:
        """The outcome row once decided, or None if it is still pending after `timeout`."""
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(command_id, []).append(woken)
        try:
            # Registered before the first read, so a decision landing in between still wakes us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), min(timeout, 2.0))
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                row = await load_decided(self._engine, command_id)
                remaining = deadline - asyncio.get_running_loop().time()
                if row is not None or remaining <= 0:
                    return row
                with contextlib.suppress(TimeoutError):
                    # A listener that dropped a notification is covered by re-reading each second.
                    await asyncio.wait_for(asyncio.shield(woken), min(remaining, 1.0))
        finally:
            waiters = self._waiters.get(command_id, [])
            if woken in waiters:
                waiters.remove(woken)
            if not waiters:
                self._waiters.pop(command_id, None)

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted or is down: retry
                self._listening.clear()
                log.warning("outcome listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(1.0)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._dsn, autocommit=True, connect_timeout=3
        ) as conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            async for notice in conn.notifies():
                for woken in self._waiters.get(notice.payload, []):
                    if not woken.done():
                        woken.set_result(None)
