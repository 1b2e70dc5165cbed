"""What the decider needs of the outside world: the events log, its snapshots, the outcomes.

Each port has a real implementation (Kafka, PostgreSQL) and an in-memory one for unit tests;
one contract test per port runs against both (tests/contracts.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class EventLog(Protocol):
    """The events topic as a decider sees it: partitions of sealed records, appended in order."""

    async def write(self, partition: int, records: list[dict[str, Any]]) -> int | None:
        """Append the records to `partition` in order; return once all of them are durable.

        Returns the offset just after the last one (None when `records` is empty).
        """
        ...

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(offset, record) of every record of `partition` from offset `start` to its end now.

        Blocking: iterate in a thread.
        """
        ...


class SnapshotStore(Protocol):
    """Key -> latest value per partition (a compacted topic): the decider's state changelog."""

    async def write(self, partition: int, entries: list[tuple[bytes, bytes]]) -> None:
        """Store (key, value) entries in `partition`, in order; return once all are durable."""
        ...

    def latest(self, partition: int) -> list[tuple[bytes, bytes]]:
        """The latest value of each key of `partition`, in the order they were last written.

        Blocking: run it in a thread.
        """
        ...


class OutcomeRecorder(Protocol):
    """Where each command's outcome is kept for the commands service (GET, Prefer: wait)."""

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Store decided outcomes (`outcomes_of` rows); a decided command keeps its first one.

        Blocking: run it in a thread. A command recorded as pending takes the decision. Raises
        `OutcomesUnavailable` when the store cannot be reached now (worth retrying later).
        """
        ...


class OutcomesUnavailable(Exception):
    """The outcomes store could not be reached (a transient fault: retry later)."""
