"""Writing to one live (SSE) connection from the hub's loop, with no coroutine per event.

The hub hands each change to every connection of the team in one loop. Writing through ASGI's
`send` is a coroutine, but it only suspends when the connection's transport has paused writing
(the client reads slower than changes come); so the writer steps the coroutine once, and only
when it did suspend is the rest of that write, and what comes after it, left to a task of that
connection, bounded by a backlog: a client that falls further behind is cut off, and resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Generator, Sequence
from typing import Any, Protocol

from starlette.types import Send


class Change(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def frame(self) -> bytes: ...


class SseWriter:
    """One connection's stream: frames written at once, a bounded backlog while it blocks."""

    def __init__(self, send: Send, sent: int, backlog_limit: int) -> None:
        self._send = send
        self.sent = sent  # the position of the last change written: nothing at or below again
        self.backlog_limit = backlog_limit
        self._backlog: deque[bytes] | None = None  # only while a write is blocked
        self._blocked: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.last_write = loop.time()
        # Set when the stream must end: overflowed (True) or broken (False).
        self.ended: asyncio.Future[bool] = loop.create_future()

    def changes(self, rows: Sequence[Change], frames: bytes | None = None) -> None:
        """Write the changes past `sent`; `frames` (all of them, joined) saves a write each."""
        if not rows:
            return
        if frames is not None and rows[0].seq > self.sent:
            self.write(frames)
        else:
            for row in rows:
                if row.seq > self.sent:
                    self.write(row.frame)
        self.sent = max(self.sent, rows[-1].seq)

    def write(self, body: bytes) -> None:
        if self.ended.done():
            return
        self.last_write = self._loop.time()
        if self._blocked is not None:
            if self._backlog is None:
                self._backlog = deque()
            if len(self._backlog) >= self.backlog_limit:
                self.end(overflowed=True)
            else:
                self._backlog.append(body)
            return
        message = {"type": "http.response.body", "body": body, "more_body": True}
        write = self._send(message).__await__()
        try:
            waiting = write.send(None)
        except StopIteration:
            return  # written (the usual case): no task, no wake-up
        except Exception:
            self.end(overflowed=False)
            return
        self._blocked = asyncio.ensure_future(self._finish(write, waiting))

    async def _finish(self, write: Generator[Any, None, None], waiting: Any) -> None:
        """The write that suspended, then the backlog, in order."""
        try:
            await _resume(write, waiting)
            while self._backlog:
                body = self._backlog.popleft()
                await self._send({"type": "http.response.body", "body": body, "more_body": True})
        except Exception:
            self.end(overflowed=False)
        finally:
            self._blocked = self._backlog = None

    def end(self, overflowed: bool) -> None:
        if not self.ended.done():
            self.ended.set_result(overflowed)
        self._backlog = None

    async def close(self) -> None:
        """Stop writing: a write still blocked is abandoned (the connection is going)."""
        self.end(overflowed=False)
        blocked = self._blocked
        if blocked is not None:
            blocked.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await blocked


async def _resume(coroutine: Generator[Any, None, None], waiting: Any) -> None:
    """Run `coroutine` to its end from where it suspended, yielding `waiting` (what it awaits)."""
    while True:
        try:
            if waiting is None:  # a bare yield: it only gave the loop a turn
                await asyncio.sleep(0)
            else:
                await waiting
        except asyncio.CancelledError:
            coroutine.close()
            raise
        except Exception:
            pass  # the coroutine sees the outcome of what it awaited itself, just below
        try:
            waiting = coroutine.send(None)
        except StopIteration:
            return
