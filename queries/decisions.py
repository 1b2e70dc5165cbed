"""Requests waiting for the worker to record a command's outcome (`?after=c<p>.<offset>`).

The worker NOTIFYs the outcomes channel with the command's id; the hub's listener hands each
notification here. A request that does not know the command's id yet (its pending row is written
off the request path) waits for any outcome and then looks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Decisions:
    """Wakes the requests waiting for a command's outcome when the worker records it."""

    def __init__(self) -> None:
        self._waiters: dict[str | None, set[asyncio.Future[None]]] = {}

    @contextmanager
    def waiting(self, command_id: str | None) -> Iterator[asyncio.Future[None]]:
        """A future done once the outcome of `command_id` (of any command, for None) is recorded.

        Registered on entry: read the outcome after entering, then await the future.
        """
        woken = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(command_id, set())
        waiters.add(woken)
        try:
            yield woken
        finally:
            waiters.discard(woken)
            if not waiters and self._waiters.get(command_id) is waiters:
                del self._waiters[command_id]

    def recorded(self, command_id: str) -> None:
        """The worker recorded the outcome of `command_id`."""
        for key in (command_id, None):
            for woken in self._waiters.get(key, ()):
                if not woken.done():
                    woken.set_result(None)

    def waiting_count(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())
