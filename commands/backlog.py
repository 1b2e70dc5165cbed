"""The commands this service appended and has not yet heard decided: a bound on what it accepts.

A command is accepted (202) once it is in Kafka; the worker decides it later. A commands
service that accepted faster than the workers decide would build a backlog without end: every
command accepted later waits longer for its decision, and a request that waits for one
(`Prefer: wait`) times out. So each commands process counts the commands it appended whose
outcome notification (the worker's NOTIFY, which `commands.outcomes.OutcomeWaiter` hears) has
not come yet. At `limit` of them it answers 503 `overloaded` with `Retry-After: 1` and appends
nothing: the workers are behind (or down), and a client's retry lands once they catch up.

A notification can be lost (the listener reconnecting): the count forgets what it was waiting
for then (`clear`), and forgets a command after `max_age` seconds, so a lost one never holds a
place for long.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

#: A command not heard decided for this long no longer counts (its notification was lost).
MAX_AGE_SECONDS = 30.0


class Backlog:
    """Appended, not yet decided: command id -> when it was appended (in append order)."""

    def __init__(
        self,
        limit: int,
        registry: CollectorRegistry | None = None,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("a backlog limit is at least 1")
        self.limit = limit
        self._max_age = max_age
        self._clock = clock
        self._since: dict[str, float] = {}
        self._size = Gauge(
            "chorus_commands_undecided",
            "Commands this process appended whose decision it has not heard of yet",
            registry=registry,
        )
        self._size.set_function(lambda: len(self._since))
        self._refused = Counter(
            "chorus_commands_overloaded",
            "Commands refused (503 overloaded) because the backlog was at its limit",
            registry=registry,
        )

    def __len__(self) -> int:
        return len(self._since)

    def full(self) -> bool:
        """True (and counted as a refusal) if no command may be appended now."""
        if len(self._since) >= self.limit:
            self._forget_old()
        if len(self._since) < self.limit:
            return False
        self._refused.inc()
        return True

    def add(self, command_id: str) -> None:
        """A command is about to be appended (before the append: its decision cannot precede)."""
        self._since.pop(command_id, None)  # a command sent again goes to the end
        self._since[command_id] = self._clock()

    def discard(self, command_id: str) -> None:
        """Decided, or its append failed."""
        self._since.pop(command_id, None)

    def clear(self) -> None:
        """Notifications may have been lost: count only what is appended from now on."""
        self._since.clear()

    def _forget_old(self) -> None:
        oldest = self._clock() - self._max_age
        while self._since:
            command_id, since = next(iter(self._since.items()))  # the oldest: append order
            if since > oldest:
                return
            del self._since[command_id]
