"""Writing to one live (SSE) connection from the hub's loop, with no coroutine per event.

The hub hands each change to every connection of the team in one loop. Writing through ASGI's
`send` is a coroutine, but it only suspends when the connection's transport has paused writing
(the client reads slower than changes come); so the writer steps the coroutine once, and only
when it did suspend is the rest of that write, and what comes after it, left to a task of that
connection, bounded by a backlog: a client that falls further behind is cut off, and resumes.

Cutting a stream off ends its HTTP response from here too: the connection's own coroutine,
which waits in `receive()`, then hears `http.disconnect` (ASGI's answer once a response is
complete), so no connection needs a task of its own to watch for its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Generator, Sequence
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The last message of a response that is cut off: the client sees the stream end, and resumes.
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


# Where ServerSend leaves the server's own `send` in a request's scope.
SERVER_SEND = "chorus.server_send"


class ServerSend:
    """Pure ASGI middleware, the outermost of the app's own: it leaves the server's `send` in
    the scope, so that a live stream writes its frames past the middlewares inside it (which
    look at a response's start, never at its body): each frame to each of 10,000 clients then
    skips three coroutine wrappers. The response's start still goes through them all."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


def server_send(scope: Scope, send: Send) -> Send:
    """The send to write a response's body with: the server's own, if ServerSend left it."""
    found: Send = scope.get(SERVER_SEND, send)
    return found


class Change(Protocol):
    @property
    def seq(self) -> int: ...

    @property
    def frame(self) -> bytes: ...


class SseWriter:
    """One connection's stream: frames written at once, a bounded backlog while it blocks."""

    # 10,000 of these live at once: no per-instance dict.
    __slots__ = ("_backlog", "_blocked", "_send", "backlog_limit", "ended", "last_write", "sent")

    def __init__(self, send: Send, sent: int, backlog_limit: int) -> None:
        self._send = send
        self.sent = sent  # the position of the last change written: nothing at or below again
        self.backlog_limit = backlog_limit
        self._backlog: deque[bytes] | None = None  # only while a write is blocked
        self._blocked: asyncio.Task[None] | None = None
        self.last_write = time.monotonic()
        # None while it streams; True once cut off (its response is ended), False if broken.
        self.ended: bool | None = None

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
        if self.ended is not None:
            return
        self.last_write = time.monotonic()
        if self._blocked is not None:
            if self._backlog is None:
                self._backlog = deque()
            if len(self._backlog) >= self.backlog_limit:
                self.end()
            else:
                self._backlog.append(body)
            return
        self._step({"type": "http.response.body", "body": body, "more_body": True})

    def end(self) -> None:
        """Cut the stream off: its response ends (after a write under way), the client resumes."""
        if self.ended is not None:
            return
        self.ended = True
        self._backlog = None
        if self._blocked is None:
            self._step(_END)
        # else: the blocked write's task sends the end once that write is done

    def _step(self, message: Message) -> None:
        write = self._send(message).__await__()
        try:
            waiting = write.send(None)
        except StopIteration:
            return  # written (the usual case): no task, no wake-up
        except Exception:
            self._broken()
            return
        self._blocked = asyncio.ensure_future(self._finish(write, waiting, message is _END))

    async def _finish(self, write: Generator[Any, None, None], waiting: Any, ending: bool) -> None:
        """The write that suspended, then the backlog, in order; then the end if it was cut."""
        try:
            await _resume(write, waiting)
            while self._backlog:
                body = self._backlog.popleft()
                await self._send({"type": "http.response.body", "body": body, "more_body": True})
            if self.ended and not ending:
                await self._send(_END)
        except Exception:
            self._broken()
        finally:
            self._blocked = self._backlog = None

    def _broken(self) -> None:
        if self.ended is None:
            self.ended = False
        self._backlog = None

    async def close(self) -> None:
        """Stop writing: a write still blocked is abandoned (the connection is going)."""
        self._broken()
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
