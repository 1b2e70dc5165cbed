"""Speaking detection with hysteresis, as LiveKit does: active over a share of a ~400 ms window.

Each tick gives a participant's level; a tick is active when the level is at or above a threshold.
Speaking starts when the active share of the window reaches `start_share` and stops when it falls
to `stop_share` or below, so a breath or a click does not flip it. A change is reported at most
once per `min_report_interval` per participant; a change that is undone within that time is
never reported.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from media.audio_format import TICK_SECONDS


@dataclass(frozen=True)
class SpeakingPolicy:
    """Thresholds of the detector (LiveKit's defaults are near these)."""

    active_dbov: float = -40.0
    window_ticks: int = round(0.4 / TICK_SECONDS)
    start_share: float = 0.4
    stop_share: float = 0.1
    min_report_interval: float = 0.3


class SpeakingDetector:
    """One participant's speaking state, fed one level per tick."""

    def __init__(self, policy: SpeakingPolicy | None = None) -> None:
        self._policy = policy or SpeakingPolicy()
        self._window: deque[bool] = deque(maxlen=self._policy.window_ticks)
        self._active_ticks = 0
        self._speaking = False
        self._reported = False
        self._reported_at: float | None = None

    @property
    def speaking(self) -> bool:
        """The state last reported (what others have been told)."""
        return self._reported

    def update(self, level_dbov: float, now: float) -> bool | None:
        """Feed this tick's level at time `now` (seconds); the new state if it is to be reported."""
        policy = self._policy
        if len(self._window) == self._window.maxlen and self._window[0]:
            self._active_ticks -= 1
        active = level_dbov >= policy.active_dbov
        self._window.append(active)
        self._active_ticks += active
        share = self._active_ticks / policy.window_ticks
        if not self._speaking and share >= policy.start_share:
            self._speaking = True
        elif self._speaking and share <= policy.stop_share:
            self._speaking = False
        if self._speaking == self._reported:
            return None
        if self._reported_at is not None and now - self._reported_at < policy.min_report_interval:
            return None
        self._reported = self._speaking
        self._reported_at = now
        return self._reported
