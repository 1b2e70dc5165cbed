"""The tick schedule: absolute deadlines t0 + k x period, so ticks never drift, and no catch-up.

After a stall longer than a period, the ticks whose time has fully passed are skipped and counted
as late instead of being run back to back (a catch-up storm would only send stale audio in a
burst).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from media.audio_format import TICK_SECONDS


@dataclass(frozen=True)
class Tick:
    """The next tick to run: its index, how long to wait for it, how many were skipped."""

    index: int
    wait: float
    skipped: int


class TickSchedule:
    """Deadlines on a monotonic clock (injected, so tests drive time themselves)."""

    def __init__(self, now: Callable[[], float], period: float = TICK_SECONDS) -> None:
        self._now = now
        self._period = period
        self._t0 = now()
        self._next = 0

    @property
    def period(self) -> float:
        return self._period

    def deadline(self, index: int) -> float:
        """When tick `index` is due."""
        return self._t0 + index * self._period

    def next_tick(self) -> Tick:
        """Claim the next tick; call it again only after that tick has run."""
        now = self._now()
        index = self._next
        behind = now - self.deadline(index)
        skipped = 0
        if behind >= self._period:
            # Run the latest tick that is due now; the older ones are gone.
            # The epsilon keeps float error from leaving a tick that is exactly due unskipped.
            skipped = math.floor(behind / self._period + 1e-9)
            index += skipped
        self._next = index + 1
        return Tick(index=index, wait=max(0.0, self.deadline(index) - now), skipped=skipped)
