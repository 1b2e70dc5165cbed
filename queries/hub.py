"""One upstream per queries process, fanned out to every live client of every team.

The worker's projector commits a team's read-model rows and its changes (`rm_changes`, one per
event, keyed by the team's seq) in one transaction and NOTIFYs `<team_id>:<seq>`. This hub holds
the process's single LISTEN connection; on a notification for a team that has live clients it
reads the new changes ONCE, encodes each once, and writes them to every client of the team in
one loop: to the client's stream (queries/stream.py) once its opening is sent, to its bounded
queue before that. A client too slow to keep up overflows its queue or its stream's backlog and
is disconnected (it resumes with Last-Event-ID), so one slow reader never grows memory or slows
the others. The hub also keeps every quiet stream alive (one ticker, not a timer per client) and
lets clients share a team's snapshot read while no newer change has been read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engines import CHANGES_CHANNEL, OUTCOMES_CHANNEL
from db.outcomes import outcome_notice
from db.tables import rm_changes, rm_positions
from queries.decisions import Decisions
from queries.stream import SseWriter
from schemas.sse import KEEPALIVE, encode_event

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = CHANGES_CHANNEL
FETCH_LIMIT = 500
# Notifications can be missed while the listener reconnects: waiters re-read this often.
RECHECK_SECONDS = 0.25


@dataclass
class ChangeRow:
    seq: int
    kind: str
    data: Any

    @cached_property
    def frame(self) -> bytes:
        """The SSE event, encoded once however many clients receive it."""
        return encode_event(self.kind, self.seq, self.data)


# The queue of every subscriber attached to its stream: never written to (offers go to the stream).
_ATTACHED: asyncio.Queue[ChangeRow | None] = asyncio.Queue(maxsize=1)


@dataclass(eq=False, slots=True)
class Subscriber:
    team_id: str
    queue: asyncio.Queue[ChangeRow | None]
    # The hub's read position of the team when it registered: every change after it reaches
    # this subscriber, so any snapshot at or past it is a valid opening.
    after: int = 0
    overflowed: bool = False
    # Its stream, once the opening is written: changes go straight there, not through `queue`.
    writer: SseWriter | None = None

    def attach(self, writer: SseWriter) -> None:
        """Write to `writer` from now on, after what was queued while the opening was read."""
        while not self.queue.empty():
            change = self.queue.get_nowait()
            if change is None:
                writer.end()
                return
            writer.changes([change])
        self.writer = writer
        self.queue = _ATTACHED  # its own (~3 KiB) is no longer used: 10,000 clients, 30 MiB

    def deliver(self, rows: Sequence[ChangeRow], frames: bytes) -> None:
        """New changes of the team, in order; `frames` is all of them, encoded and joined."""
        if self.writer is not None:
            self.writer.changes(rows, frames)
            return
        for row in rows:
            self.offer(row)

    def offer(self, change: ChangeRow) -> None:
        if self.writer is not None:
            self.writer.changes([change])
            return
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # tells the stream to end; the client resumes


@dataclass
class ChangeHub:
    engine: AsyncEngine
    database_url: str
    queue_limit: int = 1000
    # The same connection hears the worker's recorded outcomes, for `?after=c<p>.<offset>`.
    decisions: Decisions = field(default_factory=Decisions)
    _subscribers: dict[str, set[Subscriber]] = field(default_factory=dict)
    _fetched: dict[str, int] = field(default_factory=dict)
    _fetching: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _again: set[str] = field(default_factory=set)
    _moved: dict[str, asyncio.Event] = field(default_factory=dict)
    # Every stream gets a comment when quiet this long (proxies close silent connections).
    keepalive: float = 15.0
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # The latest snapshot read of each team, with the hub's read position when it began: a
    # client registered at or before that position misses nothing from it (see shared_snapshot).
    _snapshots: dict[str, tuple[int, asyncio.Future[Any]]] = field(default_factory=dict)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="change-hub"),
            asyncio.create_task(self._keep_alive_forever(), name="change-hub-keepalive"),
        ]

    async def close(self) -> None:
        tasks = [*self._tasks, *self._fetching.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def clients(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    async def subscribe(self, team_id: str) -> Subscriber:
        """Register a live client; changes committed from now on reach its queue."""
        new_team = team_id not in self._subscribers
        if new_team:
            start = await self.position(team_id)
            self._fetched.setdefault(team_id, start)
            self._subscribers.setdefault(team_id, set())
        subscriber = Subscriber(
            team_id, asyncio.Queue(maxsize=self.queue_limit), after=self._fetched[team_id]
        )
        self._subscribers[team_id].add(subscriber)
        if new_team:  # anything committed between the read above and now; a team already
            self._kick(team_id)  # followed is fetched on each notification, as it was
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        subs = self._subscribers.get(subscriber.team_id)
        if subs is None:
            return
        subs.discard(subscriber)
        if not subs:
            del self._subscribers[subscriber.team_id]
            self._fetched.pop(subscriber.team_id, None)
            self._snapshots.pop(subscriber.team_id, None)

    async def shared_snapshot(self, subscriber: Subscriber, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`, or a read of the same team begun when the hub had read no change past the
        subscriber's `after`: such a read's position is at or past it, and the subscriber gets
        every change after `after`, so none is missed. Ten thousand clients connecting while
        the team changes twice a second share one read per change, not one each."""
        team_id = subscriber.team_id
        current = self._snapshots.get(team_id)
        if current is None or current[0] < subscriber.after:
            base = self._fetched.get(team_id, subscriber.after)
            current = (base, asyncio.ensure_future(read()))
            self._snapshots[team_id] = current
            current[1].add_done_callback(lambda done: self._failed_snapshot(team_id, done))
        result: T = await asyncio.shield(current[1])
        return result

    def _failed_snapshot(self, team_id: str, done: asyncio.Future[Any]) -> None:
        entry = self._snapshots.get(team_id)
        failed = done.cancelled() or done.exception() is not None
        if failed and entry is not None and entry[1] is done:
            del self._snapshots[team_id]  # the next client reads again

    def keep_alive(self) -> None:
        """A comment to every stream quiet for half the keep-alive period or more: called every
        half period, no stream stays quiet for a whole one."""
        quiet_since = time.monotonic() - self.keepalive / 2
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                writer = subscriber.writer
                if writer is not None and writer.last_write <= quiet_since:
                    writer.write(KEEPALIVE)

    async def _keep_alive_forever(self) -> None:
        while True:
            await asyncio.sleep(self.keepalive / 2)
            self.keep_alive()

    async def position(self, team_id: str) -> int:
        async with self.engine.connect() as conn:
            seq = (
                await conn.execute(
                    sa.select(rm_positions.c.seq).where(rm_positions.c.team_id == team_id)
                )
            ).scalar()
        return int(seq or 0)

    async def changes_after(
        self, team_id: str, seq: int, limit: int | None = None
    ) -> list[ChangeRow]:
        query = (
            sa.select(rm_changes.c.seq, rm_changes.c.kind, rm_changes.c.data)
            .where(rm_changes.c.team_id == team_id, rm_changes.c.seq > seq)
            .order_by(rm_changes.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self.engine.connect() as conn:
            rows = await conn.execute(query)
            return [ChangeRow(row.seq, row.kind, row.data) for row in rows]

    async def reached(self, team_id: str, seq: int, timeout: float) -> bool:
        """Wait until the team's read model includes `seq`; False after `timeout`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if await self.position(team_id) >= seq:
                return True
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            moved = self._moved.setdefault(team_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), min(remaining, RECHECK_SECONDS))

    def _notified(self, payload: str) -> None:
        team_id, _, _ = payload.partition(":")
        moved = self._moved.pop(team_id, None)
        if moved is not None:
            moved.set()
        if team_id in self._subscribers:
            self._kick(team_id)

    def _kick(self, team_id: str) -> None:
        running = self._fetching.get(team_id)
        if running is not None and not running.done():
            self._again.add(team_id)
            return
        self._fetching[team_id] = asyncio.create_task(self._fetch(team_id))

    async def _fetch(self, team_id: str) -> None:
        try:
            while team_id in self._subscribers:
                self._again.discard(team_id)
                after = self._fetched.get(team_id, 0)
                rows = await self.changes_after(team_id, after, FETCH_LIMIT)
                if rows:
                    frames = b"".join(row.frame for row in rows)  # once for every client
                    for subscriber in list(self._subscribers.get(team_id, ())):
                        subscriber.deliver(rows, frames)
                if rows and team_id in self._fetched:
                    self._fetched[team_id] = rows[-1].seq
                if len(rows) < FETCH_LIMIT and team_id not in self._again:
                    return
        except Exception as exc:  # the database is down: clients keep their position
            log.warning("could not read changes of team %s: %s", team_id, exc)
        finally:
            self._fetching.pop(team_id, None)

    async def _listen_forever(self) -> None:
        dsn = make_url(self.database_url).set(drivername="postgresql")
        conninfo = dsn.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=3
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await conn.execute(f"LISTEN {OUTCOMES_CHANNEL}")
                    for team_id in list(self._subscribers):
                        self._kick(team_id)  # catch up what passed while not listening
                    async for notice in conn.notifies():
                        if notice.channel == OUTCOMES_CHANNEL:
                            self.decisions.recorded(outcome_notice(notice.payload)[0])
                        else:
                            self._notified(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("change listener lost its connection (%s); retrying", exc)
                await asyncio.sleep(1.0)
