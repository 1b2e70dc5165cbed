"""The ids of recently decided commands, so that a command delivered twice is decided once.

Bounded: about the last `DECIDED_MAX` ids, and none much older than `DECIDED_WINDOW_MS`
before the latest. A redelivery (a producer retry, a re-read after a crash) comes within
seconds; the 24 h promise of `Idempotency-Key` is kept by the commands service, not here.

Immutable like the rest of the state, but kept in generations of `GENERATION_SIZE` ids, so
that adding one copies only the newest generation, not all ten thousand ids.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

DECIDED_MAX = 10_000
DECIDED_WINDOW_MS = 24 * 3600 * 1000
GENERATION_SIZE = 1_000


class DecidedIds(msgspec.Struct, frozen=True):
    """Command id -> received_at (epoch ms), oldest generation first."""

    generations: tuple[dict[str, int], ...] = ()

    def __contains__(self, command_id: object) -> bool:
        return any(command_id in generation for generation in self.generations)

    def __len__(self) -> int:
        return sum(len(generation) for generation in self.generations)

    def __iter__(self) -> Iterator[str]:
        """The ids, oldest first."""
        for generation in self.generations:
            yield from generation

    def add(self, command_id: str, received_ms: int) -> DecidedIds:
        """These ids with `command_id` added, and old generations beyond the bounds dropped."""
        if command_id in self:
            return self
        *older, newest = self.generations or ({},)
        if len(newest) < GENERATION_SIZE:
            generations = (*older, {**newest, command_id: received_ms})
        else:
            generations = (*older, newest, {command_id: received_ms})
        return DecidedIds(generations=_bounded(generations, received_ms - DECIDED_WINDOW_MS))


def _bounded(generations: tuple[dict[str, int], ...], cutoff_ms: int) -> tuple[dict[str, int], ...]:
    """Without the oldest generations that are not needed to keep DECIDED_MAX ids or that are
    entirely older than `cutoff_ms` (judged by their last id: ids arrive in log order)."""
    total = sum(len(generation) for generation in generations)
    start = 0
    while start < len(generations) - 1:  # the newest generation always stays
        oldest = generations[start]
        newest_ms = next(reversed(oldest.values()))
        if total - len(oldest) < DECIDED_MAX and newest_ms >= cutoff_ms:
            break
        total -= len(oldest)
        start += 1
    return generations[start:]
