"""Records the decider's outcomes, riding out database outages without losing one.

A decided command's events are in the log before its outcome is recorded, so an outcome that
cannot be recorded now must be recorded later, not dropped (its command would stay `pending`).
Each outcome is tried at once, with a few retries on quick back-off (a blip passes unseen);
if the store stays unavailable, the outcome is queued and the decider moves on. A background
task records the queue, oldest first, retrying with back-off up to `max_backoff`.

The queue is bounded in events: the queued commands are the last ones decided, so with at most
`max_queued_events` of their events queued they all lie in the recovery window a restarted
decider reads (`OUTCOME_RECOVERY_EVENTS`); a crash while the database is down loses none. When
it is full, deciding waits for room (the partition stalls instead of stranding outcomes).
A heartbeat accepted with no events has nothing in the log to recover its outcome from: if the
worker dies while it is queued, it stays `pending` (its device's next heartbeat is answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from streams.ports import OutcomeRecorder, OutcomesUnavailable

log = logging.getLogger(__name__)

#: Half the recovery window of a restored partition (team_states.OUTCOME_RECOVERY_EVENTS).
MAX_QUEUED_EVENTS = 1000


class OutcomeWriter:
    """Records outcome rows through `recorder`, retrying and queueing while it is unavailable."""

    def __init__(
        self,
        recorder: OutcomeRecorder,
        *,
        attempts: int = 3,
        first_backoff: float = 0.05,
        max_backoff: float = 5.0,
        max_queued_events: int = MAX_QUEUED_EVENTS,
    ) -> None:
        self._recorder = recorder
        self._attempts = attempts
        self._first_backoff = first_backoff
        self._max_backoff = max_backoff
        self._max_queued_events = max_queued_events
        self._queue: deque[list[dict[str, Any]]] = deque()
        self._queued_events = 0
        self._changed = asyncio.Condition()
        self._flusher: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Outcome rows waiting for the store."""
        return sum(len(rows) for rows in self._queue)

    async def record(self, rows: list[dict[str, Any]]) -> None:
        """Record the rows now if the store answers within a few tries, else queue them."""
        if not rows:
            return
        if not self._queue:  # else they go behind the queue: it is being retried already
            for attempt in range(self._attempts):
                try:
                    await asyncio.to_thread(self._recorder.record, rows)
                    return
                except OutcomesUnavailable as exc:
                    if attempt + 1 < self._attempts:
                        await asyncio.sleep(self._backoff(attempt))
                    else:
                        log.warning("outcomes store unavailable, queueing outcomes: %s", exc)
        await self._enqueue(rows)

    async def _enqueue(self, rows: list[dict[str, Any]]) -> None:
        size = _events(rows)
        async with self._changed:
            await self._changed.wait_for(
                lambda: not self._queue or self._queued_events + size <= self._max_queued_events
            )
            self._queue.append(rows)
            self._queued_events += size
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        """Record the queue, oldest first, until it is empty."""
        attempt = 0
        while self._queue:
            batch = list(self._queue)
            rows = [row for each in batch for row in each]
            try:
                await asyncio.to_thread(self._recorder.record, rows)
            except Exception as exc:  # dropping them would strand their commands: retry
                delay = self._backoff(attempt)
                attempt += 1
                if isinstance(exc, OutcomesUnavailable):
                    log.warning("outcomes store still unavailable (retry in %.1fs): %s", delay, exc)
                else:
                    log.exception("recording queued outcomes failed (retry in %.1fs)", delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            async with self._changed:
                for _ in batch:
                    self._queued_events -= _events(self._queue.popleft())
                self._changed.notify_all()
            log.info("recorded %d queued outcomes", len(rows))

    async def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the queue to be recorded; whether it was."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: not self._queue)
        except TimeoutError:
            return False
        return True

    def _backoff(self, attempt: int) -> float:
        return float(min(self._max_backoff, self._first_backoff * 2**attempt))


def _events(rows: list[dict[str, Any]]) -> int:
    # An outcome with no events (a heartbeat's) counts as one, so that the queue stays bounded.
    return sum(max(1, len(row["events"])) for row in rows)
