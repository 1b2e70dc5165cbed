"""Command outcomes: read from the table the worker writes, awaited through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.backlog import Backlog
from db.engines import OUTCOMES_CHANNEL
from db.outcomes import BareOutcome, load_outcome, load_outcomes, outcome_notice

log = logging.getLogger(__name__)

CHANNEL = OUTCOMES_CHANNEL


#: Outcomes read together at most (one query); more waiting go in the next.
READ_BATCH = 500
#: A waiting request reads its outcome when woken, and at least this often: a notification is
#: lost only while the listener reconnects, and every waiter is woken once it listens again.
RECHECK_SECONDS = 5.0


async def load_decided(engine: AsyncEngine, command_id: str) -> Any | None:
    row = await load_outcome(engine, command_id)
    return None if row is None or row.status == "pending" else row


class DecidedReads:
    """Reads of decided outcomes by many requests at once, in as few queries as the database
    takes: ids asked for while a query runs are read together by the next one."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._wanted: dict[str, list[asyncio.Future[Any | None]]] = {}
        self._reading: asyncio.Task[None] | None = None

    async def decided(self, command_id: str) -> Any | None:
        """The command's outcome row if decided, None if pending or unknown."""
        found: asyncio.Future[Any | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(command_id, []).append(found)
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read_all(), name="outcome-reads")
        return await found

    async def _read_all(self) -> None:
        while self._wanted:
            ids = list(itertools.islice(self._wanted, READ_BATCH))
            asked = {command_id: self._wanted.pop(command_id) for command_id in ids}
            try:
                rows = await load_outcomes(self._engine, ids)
            except Exception as exc:  # the database is down: each request answers for itself
                for futures in asked.values():
                    _settle(futures, exception=exc)
                continue
            for command_id, futures in asked.items():
                row = rows.get(command_id)
                _settle(futures, None if row is None or row.status == "pending" else row)


def _settle(
    futures: list[asyncio.Future[Any | None]],
    value: Any | None = None,
    exception: BaseException | None = None,
) -> None:
    for future in futures:
        if future.done():  # its request went away
            continue
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(value)


@dataclass(frozen=True)
class Expected:
    """A wait registered before its command was appended: a decision cannot come before it,
    so if the listener was listening then, the notification is the first word of it."""

    woken: asyncio.Future[BareOutcome | None]
    listening: bool


class OutcomeWaiter:
    """Wakes requests that wait (`Prefer: wait=N`) when the worker records their outcome.

    A notification that carries the outcome whole (accepted with no events: a lease refreshed)
    is the answer; another is read from the table (a batch of reads for many requests).
    """

    def __init__(self, engine: AsyncEngine, database_url: str, backlog: Backlog) -> None:
        self._reads = DecidedReads(engine)
        self._backlog = backlog  # every notification is a command decided
        self._dsn = (
            make_url(database_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        self._waiters: dict[str, list[asyncio.Future[BareOutcome | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="outcome-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def expecting(self, command_id: str, wanted: bool = True) -> Iterator[Expected | None]:
        """Register a wait for a command about to be appended (None if not `wanted`)."""
        if not wanted:
            yield None
            return
        expected = Expected(self._register(command_id), self._listening.is_set())
        try:
            yield expected
        finally:
            self._unregister(command_id, expected.woken)

    async def wait(
        self, command_id: str, timeout: float, expected: Expected | None = None
    ) -> Any | None:
        """The outcome (a row, or a `BareOutcome`) once decided, or None if it is still pending
        after `timeout`. With `expected` (registered before the append), no first read."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        woken = self._register(command_id) if expected is None else expected.woken
        try:
            if expected is None or not expected.listening:
                # Registered before the first read, so a decision landing in between wakes us.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._listening.wait(), min(timeout, 2.0))
                row = await self._reads.decided(command_id)
                if row is not None:
                    return row
            while (remaining := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(woken), min(remaining, RECHECK_SECONDS))
                if woken.done():
                    if (bare := woken.result()) is not None:
                        return bare
                    # Read again, and wait for the next wake-up after that.
                    self._unregister(command_id, woken)
                    woken = self._register(command_id)
                row = await self._reads.decided(command_id)
                if row is not None:
                    return row
            return None
        finally:
            self._unregister(command_id, woken)

    def _register(self, command_id: str) -> asyncio.Future[BareOutcome | None]:
        woken: asyncio.Future[BareOutcome | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(command_id, []).append(woken)
        return woken

    def _unregister(self, command_id: str, woken: asyncio.Future[BareOutcome | None]) -> None:
        waiters = self._waiters.get(command_id, [])
        if woken in waiters:
            waiters.remove(woken)
        if not waiters:
            self._waiters.pop(command_id, None)

    def _wake(self, payload: str) -> None:
        command_id, bare = outcome_notice(payload)
        self._backlog.discard(command_id)
        for woken in self._waiters.get(command_id, []):
            if not woken.done():
                woken.set_result(bare)

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
            self._backlog.clear()  # decisions made while not listening were not heard
            self._listening.set()
            # Notifications sent while not listening are lost: every waiter reads again.
            for command_id in list(self._waiters):
                self._wake(command_id)
            async for notice in conn.notifies():
                self._wake(notice.payload)
