"""Who talks: they get their own mix-minus encode; everyone else shares one encode.

A participant whose frame is at or above the gate level joins the talkers at once (so the first
syllable is not lost) and stays one `hold` after its last loud frame, so that a listener does not
flap between the shared stream and its own. Only talkers are mixed: a participant's audio is in
the shared mix only while they get their own stream, so nobody ever hears themselves.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class TalkerPolicy:
    """The gate: how loud counts as talking, and how long a talker is held."""

    gate_dbov: float = -50.0
    hold_seconds: float = 1.5


class TalkerSet(Generic[K]):
    """The current talkers, updated once per tick."""

    def __init__(self, policy: TalkerPolicy | None = None) -> None:
        self._policy = policy or TalkerPolicy()
        self._last_loud: dict[K, float] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._last_loud

    def __len__(self) -> int:
        return len(self._last_loud)

    def update(self, levels: Iterable[tuple[K, float]], now: float) -> frozenset[K]:
        """Feed this tick's level of each heard participant; the talkers after this tick.

        Participants not in `levels` (muted, gone) are dropped at once: they are not heard.
        """
        heard: set[K] = set()
        for key, level in levels:
            heard.add(key)
            if level >= self._policy.gate_dbov:
                self._last_loud[key] = now
        for key in list(self._last_loud):
            if key not in heard or now - self._last_loud[key] > self._policy.hold_seconds:
                del self._last_loud[key]
        return frozenset(self._last_loud)
