"""What the decider needs of the outside world: the events log and the outcomes store.

Each port has a real implementation (Kafka, PostgreSQL) and an in-memory one for unit tests;
one contract test per port runs against both (tests/contracts.py).
"""

from __future__ import annotations

from typing import Any, Protocol


class EventLog(Protocol):
    """The events topic as a decider sees it: partitions of sealed records, appended in order."""

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        """Append the records to `partition` in order; return once all of them are durable."""
        ...

    def records(self, partition: int) -> list[dict[str, Any]]:
        """Every record now in `partition`, in order (blocking: run it in a thread)."""
        ...


class OutcomeRecorder(Protocol):
    """Where each command's outcome is kept for the commands service (GET, Prefer: wait)."""

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Store decided outcomes (`outcomes_of` rows); a decided command keeps its first one.

        Blocking: run it in a thread. A command recorded as pending takes the decision.
        """
        ...
