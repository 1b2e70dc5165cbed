"""A takeover: the first decision waits neither for the other partitions nor for the outcomes
being recovered, and those outcomes are still recorded, in time to stay inside the window."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from config.faults import FaultInjected, Faults
from schemas.commands import CommandPayload, JoinCall, SetPresence, StartCall
from schemas.mapper import MAPPER
from streams import team_states
from streams.decider import AFTER_EVENTS_ACKED, Decider
from streams.domain import TeamState
from streams.domain.testing import TEAM, command
from streams.event_log import InMemoryEventLog
from streams.outcome_writer import OutcomeWriter
from streams.outcomes import InMemoryOutcomeRecorder
from streams.team_states import TeamStates

PARTITION = 1


def raw(actor: str, payload: CommandPayload, command_id: str, at: float = 0) -> bytes:
    return MAPPER.command_to_bytes(command(actor, payload, at=at, command_id=command_id))


class GatedOutcomes(InMemoryOutcomeRecorder):
    """Outcomes whose rows for `held` commands are recorded only once the gate opens."""

    def __init__(self, held: set[str]) -> None:
        super().__init__()
        self.held = held
        self.gate = threading.Event()

    def record(self, rows: list[dict[str, Any]]) -> None:
        if self.held & {row["command_id"] for row in rows}:
            self.gate.wait(30)
        super().record(rows)


class OrderedLog(InMemoryEventLog):
    """An events log that notes which partition each read was of."""

    def __init__(self) -> None:
        super().__init__()
        self.partitions_read: list[int] = []

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        self.partitions_read.append(partition)
        return super().read(partition, start)


async def crashed_before_outcome(log: InMemoryEventLog) -> bytes:
    """A decider that wrote the events of `join` and died before recording its outcome."""
    crashing = Decider(
        log,
        InMemoryOutcomeRecorder(),
        presence_ttl=30,
        faults=Faults.parse(f"{AFTER_EVENTS_ACKED}=fail@2"),
    )
    await crashing.decide(PARTITION, 0, raw("ann", StartCall(call_id="c1"), "start"))
    join = raw("bob", JoinCall(call_id="c1"), "join", at=1)
    with pytest.raises(FaultInjected):
        await crashing.decide(PARTITION, 1, join)
    return join


async def test_the_first_decision_does_not_wait_for_the_outcomes_being_recovered() -> None:
    log = InMemoryEventLog()
    join = await crashed_before_outcome(log)
    outcomes = GatedOutcomes(held={"join"})
    again = Decider(log, outcomes, presence_ttl=30)

    busy = raw("ann", SetPresence(status="busy", device_id="d"), "busy", at=2)
    assert await again.decide(PARTITION, 2, busy) == "accepted"
    assert await again.decide(PARTITION, 1, join) == "no_events"  # redelivered: decided once

    assert [r["causation_id"] for r in log.records(PARTITION)] == ["start", "join", "busy"]
    assert outcomes.rows["busy"]["status"] == "accepted"
    assert "join" not in outcomes.rows  # its recovery is held...
    outcomes.gate.set()
    assert await again.states.recovered(timeout=30)
    assert outcomes.rows["join"]["status"] == "accepted"  # ...and never stranded


async def test_deciding_waits_for_the_recovery_once_the_partition_grew_by_the_slack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(team_states, "RECOVERY_SLACK", 2)
    log = InMemoryEventLog()
    await crashed_before_outcome(log)
    outcomes = GatedOutcomes(held={"join"})
    again = Decider(log, outcomes, presence_ttl=30)
    statuses = ("busy", "away", "available")
    changes = [
        raw("ann", SetPresence(status=status, device_id="d"), status, at=2 + n)
        for n, status in enumerate(statuses)
    ]
    for offset, change in enumerate(changes[:2], start=2):  # two events: the slack
        assert await again.decide(PARTITION, offset, change) == "accepted"

    third = asyncio.ensure_future(again.decide(PARTITION, 4, changes[2]))
    done, _ = await asyncio.wait({third}, timeout=0.5)
    assert not done  # the recovered outcomes would leave the next owner's window
    assert "available" not in {r["causation_id"] for r in log.records(PARTITION)}

    outcomes.gate.set()
    assert await third == "accepted"
    assert outcomes.rows["join"]["status"] == "accepted"


async def test_a_partition_a_command_waits_for_is_restored_before_the_queued_ones() -> None:
    log = OrderedLog()
    for partition in range(4):
        await log.write(partition, [])
    states = TeamStates(log)

    states.preload({0, 1, 2, 3})
    await states.team(3, TEAM)
    assert log.partitions_read[0] == 3

    while states.preloading:  # the others follow in the background
        await asyncio.sleep(0.01)
    assert len(states.partitions()) == 4
    assert sorted(log.partitions_read) == [0, 1, 2, 3]


async def test_a_revoked_partition_is_not_preloaded() -> None:
    log = OrderedLog()
    states = TeamStates(log)

    states.preload({0, 1})
    states.forget({1})
    await states.team(0, TEAM)
    while states.preloading:
        await asyncio.sleep(0.01)

    assert log.partitions_read == [0]
    assert set(states.partitions()) == {0}


class FailingOnce(InMemoryEventLog):
    """An events log whose first read fails (a broker that was not reachable yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        self.reads += 1
        if self.reads == 1:
            raise RuntimeError("the broker is not reachable")
        return super().read(partition, start)


async def test_a_partition_that_failed_to_restore_is_restored_again_when_next_needed() -> None:
    log = FailingOnce()
    states = TeamStates(log)

    with pytest.raises(RuntimeError):
        await states.team(PARTITION, TEAM)
    assert await states.team(PARTITION, TEAM) == TeamState()
    assert log.reads == 2


class HeldLog(InMemoryEventLog):
    """An events log whose reads of partition `held` wait until the gate opens."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held
        self.gate = threading.Event()

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        if partition == self.held:
            self.gate.wait(30)
        return super().read(partition, start)


async def test_outcomes_are_recovered_once_no_command_waits_for_a_restore() -> None:
    log = HeldLog(held=PARTITION + 1)
    await crashed_before_outcome(log)
    outcomes = InMemoryOutcomeRecorder()
    states = TeamStates(log, OutcomeWriter(outcomes))

    other = asyncio.ensure_future(states.team(PARTITION + 1, TEAM))  # its restore is held
    await states.team(PARTITION, TEAM)
    await asyncio.sleep(0.2)
    assert "join" not in outcomes.rows  # the waiting command's restore goes first

    log.gate.set()
    await other
    assert await states.recovered(timeout=30)
    assert outcomes.rows["join"]["status"] == "accepted"
