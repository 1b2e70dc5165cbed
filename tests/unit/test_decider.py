"""The decider with in-memory ports: decide, write and await, keep the state, record the outcome."""

from __future__ import annotations

from typing import Any

import pytest

from config.faults import FaultInjected, Faults
from schemas.clock import parse_time
from schemas.commands import (
    CommandPayload,
    ExpirePresence,
    JoinCall,
    RecordHeartbeat,
    SetPresence,
    StartCall,
)
from schemas.mapper import MAPPER
from streams.decider import AFTER_EVENTS_ACKED, BEFORE_EVENTS_WRITTEN, Decider
from streams.domain import fold
from streams.domain.testing import TEAM, at_time, command
from streams.event_log import InMemoryEventLog
from streams.outcomes import InMemoryOutcomeRecorder

PARTITION = 1


class WatchedOutcomes(InMemoryOutcomeRecorder):
    """Outcomes that note, as each is recorded, which commands' events the log already holds."""

    def __init__(self, log: InMemoryEventLog) -> None:
        super().__init__()
        self.log = log
        self.in_log_when_recorded: dict[str, set[str]] = {}

    def record(self, rows: list[dict[str, Any]]) -> None:
        in_log = {r["causation_id"] for r in self.log.records(PARTITION)}
        for row in rows:
            self.in_log_when_recorded[row["command_id"]] = in_log
        super().record(rows)


def raw(actor: str, payload: CommandPayload, command_id: str, at: float = 0) -> bytes:
    return MAPPER.command_to_bytes(command(actor, payload, at=at, command_id=command_id))


START = raw("ann", StartCall(call_id="c1"), "start")


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
def outcomes(log: InMemoryEventLog) -> WatchedOutcomes:
    return WatchedOutcomes(log)


def decider_of(
    log: InMemoryEventLog, outcomes: WatchedOutcomes, faults: str = "", started_at: float = 0
) -> Decider:
    """A decider as a (re)started worker has one (`started_at` seconds after BASE_TIME): its
    states are rebuilt from the log."""
    started = parse_time(at_time(started_at)).timestamp()
    return Decider(
        log, outcomes, presence_ttl=30, faults=Faults.parse(faults), clock=lambda: started
    )


async def test_a_command_is_decided_into_the_log_and_its_outcome(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)

    assert await decider.decide(PARTITION, 7, START) == "accepted"

    records = log.records(PARTITION)
    assert [r["type"] for r in records] == ["call.started"]
    assert await decider.states.team(PARTITION, TEAM) == fold(records)
    assert outcomes.rows["start"]["status"] == "accepted"
    assert outcomes.rows["start"]["command_position"] == f"c{PARTITION}.7"
    assert outcomes.rows["start"]["events"] == records


async def test_a_repeated_command_gives_no_new_events_even_after_a_restart(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    await decider_of(log, outcomes).decide(PARTITION, 0, START)
    written = log.records(PARTITION)

    assert await decider_of(log, outcomes).decide(PARTITION, 0, START) == "no_events"
    assert log.records(PARTITION) == written


async def test_a_rejected_command_is_recorded_with_its_reason(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)

    verdict = await decider.decide(PARTITION, 0, raw("bob", JoinCall(call_id="nope"), "join"))

    assert verdict == "rejected"
    assert [r["type"] for r in log.records(PARTITION)] == ["command.rejected"]
    assert (outcomes.rows["join"]["status"], outcomes.rows["join"]["reason"]) == (
        "rejected",
        "unknown_call",
    )


async def test_outcomes_are_recorded_after_their_events_are_in_the_log(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)

    await decider.decide(PARTITION, 0, START)
    await decider.decide(PARTITION, 1, raw("bob", JoinCall(call_id="c1"), "join", at=1))

    assert outcomes.in_log_when_recorded == {"start": {"start"}, "join": {"start", "join"}}


async def test_a_command_without_events_and_a_broken_envelope_record_nothing(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)

    assert await decider.decide(PARTITION, 0, raw("timer", ExpirePresence(), "tick")) == (
        "no_events"
    )
    assert await decider.decide(PARTITION, 1, b"not json") == "malformed"
    assert log.records(PARTITION) == [] and outcomes.rows == {}


async def test_a_crash_between_the_ack_and_the_outcome_is_finished_by_the_next_decider(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    crashing = decider_of(log, outcomes, f"{AFTER_EVENTS_ACKED}=fail@2")
    await crashing.decide(PARTITION, 0, START)
    join = raw("bob", JoinCall(call_id="c1"), "join", at=1)
    with pytest.raises(FaultInjected):
        await crashing.decide(PARTITION, 1, join)
    assert "join" in {r["causation_id"] for r in log.records(PARTITION)}
    assert "join" not in outcomes.rows

    # Redelivered to a new decider: found decided in the rebuilt state, its outcome recovered
    # (in the background: its first decision does not wait for the recovery).
    again = decider_of(log, outcomes)
    assert await again.decide(PARTITION, 1, join) == "no_events"
    assert await again.states.recovered(timeout=10)

    assert [r["causation_id"] for r in log.records(PARTITION)] == ["start", "join"]
    assert outcomes.rows["join"]["status"] == "accepted"


async def test_a_crash_before_the_write_leaves_the_command_to_be_decided_again(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    with pytest.raises(FaultInjected):
        await decider_of(log, outcomes, f"{BEFORE_EVENTS_WRITTEN}=fail").decide(PARTITION, 0, START)
    assert log.records(PARTITION) == [] and outcomes.rows == {}

    assert await decider_of(log, outcomes).decide(PARTITION, 0, START) == "accepted"
    assert [r["causation_id"] for r in log.records(PARTITION)] == ["start"]


async def test_a_heartbeat_that_changes_nothing_seen_is_accepted_with_no_events(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)
    first = raw("ann", RecordHeartbeat(device_id="d1"), "beat-1", at=0)
    again = raw("ann", RecordHeartbeat(device_id="d1"), "beat-2", at=10)

    assert await decider.decide(PARTITION, 0, first) == "accepted"  # first heard: seen
    assert await decider.decide(PARTITION, 1, again) == "accepted"

    assert [r["causation_id"] for r in log.records(PARTITION)] == ["beat-1"]
    assert outcomes.rows["beat-2"] == {
        "command_id": "beat-2",
        "team_id": TEAM,
        "actor": "ann",
        "status": "accepted",
        "reason": None,
        "position": "1",  # the team's seq as it was decided
        "command_position": f"c{PARTITION}.1",
        "events": [],
    }
    # Redelivered (after a crash before its offset was committed): the same answer, once more.
    assert await decider_of(log, outcomes).decide(PARTITION, 1, again) == "accepted"
    assert outcomes.rows["beat-2"]["events"] == [] and len(log.records(PARTITION)) == 1
    # A redelivered heartbeat that did record an event is found decided, as any command.
    assert await decider_of(log, outcomes).decide(PARTITION, 0, first) == "no_events"


async def test_the_lease_a_heartbeat_refreshed_keeps_the_device_online_past_its_last_event(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    decider = decider_of(log, outcomes)
    await decider.decide(PARTITION, 0, raw("ann", SetPresence(status="busy", device_id="d1"), "s"))
    await decider.decide(PARTITION, 1, raw("ann", RecordHeartbeat(device_id="d1"), "b", at=25))

    assert await decider.decide(PARTITION, 2, raw("timer", ExpirePresence(), "t1", at=50)) == (
        "no_events"
    )
    assert await decider.decide(PARTITION, 3, raw("timer", ExpirePresence(), "t2", at=56)) == (
        "accepted"
    )
    (expiry,) = [r for r in log.records(PARTITION) if r["causation_id"] == "t2"]
    assert expiry["data"]["devices"][0]["last_seen"] == at_time(25)  # its last heartbeat


async def test_a_restarted_decider_gives_online_devices_a_lease_from_when_it_loaded(
    log: InMemoryEventLog, outcomes: WatchedOutcomes
) -> None:
    set_ = raw("ann", SetPresence(status="busy", device_id="d1"), "s")
    await decider_of(log, outcomes).decide(PARTITION, 0, set_)

    restarted = decider_of(log, outcomes, started_at=100)  # heartbeats since 0 died with the old
    assert await restarted.decide(PARTITION, 1, raw("timer", ExpirePresence(), "t1", at=125)) == (
        "no_events"
    )
    assert await restarted.decide(PARTITION, 2, raw("timer", ExpirePresence(), "t2", at=131)) == (
        "accepted"
    )
    (expiry,) = [r for r in log.records(PARTITION) if r["causation_id"] == "t2"]
    assert expiry["data"]["status"] == "offline"
