"""Deciding a poll's commands as one batch: the same decisions as one by one, events first, then
every outcome of the batch in one write."""

from __future__ import annotations

from typing import Any

import pytest

from config.faults import FaultInjected, Faults
from schemas.commands import CommandPayload, JoinCall, RecordHeartbeat, SetPresence, StartCall
from schemas.mapper import MAPPER
from streams.decider import AFTER_EVENTS_ACKED, BEFORE_EVENTS_WRITTEN, Decider
from streams.domain.testing import command
from streams.event_log import InMemoryEventLog
from streams.outcomes import InMemoryOutcomeRecorder


class CountedOutcomes(InMemoryOutcomeRecorder):
    """Outcomes that note each write (its command ids) and what the log held at that moment."""

    def __init__(self, log: InMemoryEventLog) -> None:
        super().__init__()
        self.log = log
        self.writes: list[list[str]] = []
        self.in_log_when_written: list[set[str]] = []

    def record(self, rows: list[dict[str, Any]]) -> None:
        self.writes.append([row["command_id"] for row in rows])
        in_log = {r["causation_id"] for p in (1, 2) for r in self.log.records(p)}
        self.in_log_when_written.append(in_log)
        super().record(rows)


def raw(team: str, actor: str, payload: CommandPayload, command_id: str, at: float = 0) -> bytes:
    return MAPPER.command_to_bytes(
        command(actor, payload, at=at, team_id=team, command_id=command_id)
    )


# Two partitions, three teams; starts, a rejection, presence, heartbeats (a first one, then
# lease refreshes), a repeated command and a broken one.
BATCH: list[tuple[int, int, bytes]] = [
    (1, 0, raw("a", "ann", StartCall(call_id="c1"), "a-start")),
    (2, 0, raw("b", "bob", StartCall(call_id="c2"), "b-start")),
    (1, 1, raw("a", "cat", JoinCall(call_id="nope"), "a-join-nope")),
    (1, 2, raw("c", "cat", RecordHeartbeat(device_id="d1"), "c-beat-1")),
    (1, 3, raw("c", "cat", RecordHeartbeat(device_id="d1"), "c-beat-2", at=10)),
    (2, 1, raw("b", "bob", SetPresence(status="busy", device_id="d2"), "b-busy", at=1)),
    (1, 4, raw("a", "ann", StartCall(call_id="c1"), "a-start")),  # redelivered
    (2, 2, b"not json"),
    (1, 5, raw("c", "cat", RecordHeartbeat(device_id="d1"), "c-beat-3", at=20)),
    (1, 6, raw("a", "ann", JoinCall(call_id="c1"), "a-join", at=2)),
]


# Every command of BATCH with an outcome (all but the repeated one and the broken one).
DECIDED = {
    "a-start",
    "b-start",
    "a-join-nope",
    "c-beat-1",
    "c-beat-2",
    "b-busy",
    "c-beat-3",
    "a-join",
}


def decider_of(log: InMemoryEventLog, outcomes: CountedOutcomes, faults: str = "") -> Decider:
    return Decider(log, outcomes, presence_ttl=30, faults=Faults.parse(faults), clock=lambda: 0)


async def test_a_batch_decides_as_its_commands_one_by_one() -> None:
    one_log, batch_log = InMemoryEventLog(), InMemoryEventLog()
    one_outcomes, batch_outcomes = CountedOutcomes(one_log), CountedOutcomes(batch_log)
    one_by_one = decider_of(one_log, one_outcomes)
    batched = decider_of(batch_log, batch_outcomes)

    singles = [await one_by_one.decide(*each) for each in BATCH]
    together = await batched.decide_many(BATCH)

    assert together == singles
    assert together[6:8] == ["no_events", "malformed"]
    for partition in (1, 2):
        assert batch_log.records(partition) == one_log.records(partition)
    assert batch_outcomes.rows == one_outcomes.rows
    for team in ("a", "b", "c"):
        partition = 2 if team == "b" else 1
        batched_state = await batched.states.team(partition, team)
        assert batched_state == await one_by_one.states.team(partition, team)


async def test_a_batch_records_every_outcome_in_one_write_after_all_its_events() -> None:
    log = InMemoryEventLog()
    outcomes = CountedOutcomes(log)

    await decider_of(log, outcomes).decide_many(BATCH)

    decided = ["a-start", "b-start", "a-join-nope", "c-beat-1", "c-beat-2", "b-busy"]
    assert outcomes.writes == [[*decided, "c-beat-3", "a-join"]]
    with_events = {"a-start", "b-start", "a-join-nope", "c-beat-1", "b-busy", "a-join"}
    assert outcomes.in_log_when_written == [with_events]
    assert outcomes.rows["c-beat-3"]["events"] == []  # a lease refreshed: accepted, no events


async def test_a_batch_that_fails_before_its_events_writes_nothing() -> None:
    log = InMemoryEventLog()
    outcomes = CountedOutcomes(log)

    with pytest.raises(FaultInjected):
        await decider_of(log, outcomes, f"{BEFORE_EVENTS_WRITTEN}=fail").decide_many(BATCH)

    assert log.records(1) == log.records(2) == [] and outcomes.rows == {}


async def test_a_batch_killed_after_its_events_has_its_outcomes_recovered_from_the_log() -> None:
    log = InMemoryEventLog()
    outcomes = CountedOutcomes(log)
    with pytest.raises(FaultInjected):
        await decider_of(log, outcomes, f"{AFTER_EVENTS_ACKED}=fail").decide_many(BATCH)
    written = {p: log.records(p) for p in (1, 2)}
    assert outcomes.rows == {}

    restarted = decider_of(log, outcomes)
    verdicts = await restarted.decide_many(BATCH)  # redelivered: nothing was committed

    assert {p: log.records(p) for p in (1, 2)} == written  # found decided, not decided again
    assert verdicts[:2] == ["no_events", "no_events"]
    # Recovered from the log as the partitions were restored, or re-decided (lease refreshes).
    assert set(outcomes.rows) == DECIDED
    assert outcomes.rows["a-join-nope"]["status"] == "rejected"


@pytest.mark.parametrize("point", [BEFORE_EVENTS_WRITTEN, AFTER_EVENTS_ACKED])
async def test_a_failed_batch_is_decided_again_from_the_log_once(point: str) -> None:
    log = InMemoryEventLog()
    outcomes = CountedOutcomes(log)
    expected_log = InMemoryEventLog()
    await decider_of(expected_log, CountedOutcomes(expected_log)).decide_many(BATCH)

    decider = decider_of(log, outcomes, f"{point}=fail")
    verdicts = await decider.decide_surely(BATCH, 0.001)
    assert await decider.states.recovered(5)  # outcomes found in the log are recorded after

    # Each command's events once, as if nothing had failed, and every outcome recorded.
    for partition in (1, 2):
        assert log.records(partition) == expected_log.records(partition)
    assert set(outcomes.rows) == DECIDED
    assert len(verdicts) == len(BATCH) and verdicts[7] == "malformed"
