"""One contract test class per port of the decider (pyeventsourcing's `tests/persistence.py`).

A subclass named `Test...` provides the implementation: the in-memory one in tests/unit, the
real one (Kafka, PostgreSQL) in tests/integration, so the fake is held to what the real one does.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from typing import Any

from schemas.commands import JoinCall, StartCall
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command
from streams.outcomes import outcomes_of
from streams.ports import EventLog, OutcomeRecorder, SnapshotStore


def decided_records(team_id: str, *payloads: Any) -> list[dict[str, Any]]:
    """The sealed records of a team deciding one command per payload (fresh command ids)."""
    state, records = TeamState(), []
    for index, payload in enumerate(payloads):
        each = command("ann", payload, at=index, team_id=team_id, command_id=str(uuid.uuid4()))
        new, state = decide_and_seal(state, each)
        records += new
    return records


def records_of(log: EventLog, partition: int, start: int = 0) -> list[dict[str, Any]]:
    return [record for _, record in log.read(partition, start)]


class EventLogContract:
    """What a decider relies on of its events log. Subclasses provide the `log` fixture."""

    async def test_written_records_are_read_back_in_order(self, log: EventLog) -> None:
        first = decided_records("team-a", StartCall(call_id="c1"))
        second = decided_records("team-b", StartCall(call_id="c1"), JoinCall(call_id="c1"))

        await log.write(1, first)
        await log.write(1, second)

        assert records_of(log, 1) == first + second

    async def test_a_write_says_the_offset_after_it_and_reads_start_anywhere(
        self, log: EventLog
    ) -> None:
        first = decided_records("team-a", StartCall(call_id="c1"), JoinCall(call_id="c1"))
        second = decided_records("team-b", StartCall(call_id="c1"))

        after_first = await log.write(1, first)
        after_second = await log.write(1, second)

        assert after_first is not None and after_second == after_first + len(second)
        assert [offset for offset, _ in log.read(1)] == list(range(after_second - 3, after_second))
        assert records_of(log, 1, after_first) == second
        assert records_of(log, 1, after_second) == []

    async def test_partitions_are_kept_apart(self, log: EventLog) -> None:
        zero = decided_records("team-a", StartCall(call_id="c1"))
        two = decided_records("team-b", StartCall(call_id="c2"))

        await log.write(0, zero)
        await log.write(2, two)

        assert (records_of(log, 0), records_of(log, 1), records_of(log, 2)) == (zero, [], two)

    async def test_what_a_reader_changes_is_not_changed_in_the_log(self, log: EventLog) -> None:
        written = decided_records("team-a", StartCall(call_id="c1"))
        await log.write(0, written)

        records_of(log, 0)[0]["seq"] = 99

        assert records_of(log, 0) == written

    async def test_writing_nothing_appends_nothing(self, log: EventLog) -> None:
        assert await log.write(0, []) is None

        assert records_of(log, 0) == []


class OutcomeRecorderContract(ABC):
    """What the decider and the commands service rely on of the outcomes store.

    Subclasses provide the `recorder` fixture, and `stored` and `record_pending` on the same
    store (what the commands service does and reads).
    """

    @abstractmethod
    def stored(self, command_id: str) -> dict[str, Any] | None:
        """The stored outcome: status, reason, position, command_position, events."""

    @abstractmethod
    def record_pending(self, row: dict[str, Any]) -> None:
        """Record a command as pending, as the commands service does when it appends it."""

    def test_a_decision_is_stored(self, recorder: OutcomeRecorder) -> None:
        records = decided_records(str(uuid.uuid4()), StartCall(call_id="c1"))

        recorder.record(outcomes_of(records, "c1.5"))

        assert self.stored(records[0]["causation_id"]) == {
            "status": "accepted",
            "reason": None,
            "position": str(records[-1]["seq"]),
            "command_position": "c1.5",
            "events": records,
        }

    def test_a_rejection_keeps_its_reason_and_several_commands_go_at_once(
        self, recorder: OutcomeRecorder
    ) -> None:
        records = decided_records(
            str(uuid.uuid4()), StartCall(call_id="c1"), JoinCall(call_id="c1")
        )
        start, join = records[0]["causation_id"], records[-1]["causation_id"]

        recorder.record(outcomes_of(records))

        assert (self.stored(start) or {}).get("status") == "accepted"
        assert {k: (self.stored(join) or {}).get(k) for k in ("status", "reason")} == {
            "status": "rejected",
            "reason": "already_joined",
        }

    def test_a_decided_command_keeps_its_first_outcome(self, recorder: OutcomeRecorder) -> None:
        records = decided_records(str(uuid.uuid4()), StartCall(call_id="c1"))
        recorder.record(outcomes_of(records, "c1.5"))
        first = self.stored(records[0]["causation_id"])
        other = {**outcomes_of(records)[0], "status": "rejected", "reason": "already_in_call"}

        recorder.record([other])

        assert self.stored(records[0]["causation_id"]) == first

    def test_a_pending_command_takes_the_decision_and_keeps_its_position(
        self, recorder: OutcomeRecorder
    ) -> None:
        records = decided_records(str(uuid.uuid4()), StartCall(call_id="c1"))
        row = outcomes_of(records)[0]  # recovered from the log: where it was appended is unknown
        self.record_pending(
            {
                **row,
                "status": "pending",
                "position": "c2.7",
                "command_position": "c2.7",
                "events": [],
            }
        )

        recorder.record([row])

        assert self.stored(row["command_id"]) == {
            "status": "accepted",
            "reason": None,
            "position": str(records[-1]["seq"]),
            "command_position": "c2.7",
            "events": records,
        }

    def test_recording_nothing_stores_nothing(self, recorder: OutcomeRecorder) -> None:
        recorder.record([])

        assert self.stored(str(uuid.uuid4())) is None


class SnapshotStoreContract:
    """What the decider relies on of its snapshot store. Subclasses provide the `store` fixture."""

    async def test_the_latest_value_of_each_key_is_kept_in_the_order_last_written(
        self, store: SnapshotStore
    ) -> None:
        await store.write(1, [(b"team:a", b"a1"), (b"team:b", b"b1"), (b"checkpoint", b"c1")])
        await store.write(1, [(b"team:a", b"a2"), (b"checkpoint", b"c2")])

        assert store.latest(1) == [(b"team:b", b"b1"), (b"team:a", b"a2"), (b"checkpoint", b"c2")]

    async def test_partitions_are_kept_apart(self, store: SnapshotStore) -> None:
        await store.write(0, [(b"team:a", b"zero")])
        await store.write(2, [(b"team:a", b"two")])

        assert (store.latest(0), store.latest(1), store.latest(2)) == (
            [(b"team:a", b"zero")],
            [],
            [(b"team:a", b"two")],
        )

    async def test_writing_nothing_stores_nothing(self, store: SnapshotStore) -> None:
        await store.write(0, [])

        assert store.latest(0) == []
