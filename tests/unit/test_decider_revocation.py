"""A partition handed to another worker is fenced off: the revocation waits for the batch being
decided, and the commands of the partition still in hand are left to its next owner."""

from __future__ import annotations

import asyncio
from typing import Any

from schemas.commands import SetPresence
from schemas.mapper import MAPPER
from streams.decider import REVOKED, Decider
from streams.domain import TeamState
from streams.domain.testing import command
from streams.event_log import InMemoryEventLog
from streams.outcomes import InMemoryOutcomeRecorder
from streams.team_states import TeamStates


def presence(team: str, command_id: str, status: str = "busy") -> bytes:
    payload = SetPresence(status=status, device_id="d1")
    return MAPPER.command_to_bytes(command("ann", payload, team_id=team, command_id=command_id))


class HeldLog(InMemoryEventLog):
    """An events log whose writes wait until `release` is set (a slow broker)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, partition: int, records: list[dict[str, Any]]) -> int | None:
        self.writing.set()
        await self.release.wait()
        return await super().write(partition, records)


async def test_commands_of_a_revoked_partition_are_left_to_its_next_owner() -> None:
    log, outcomes = InMemoryEventLog(), InMemoryOutcomeRecorder()
    decider = Decider(log, outcomes, presence_ttl=30)
    decider.assigned({1, 2})
    await decider.revoked({2})

    verdicts = await decider.decide_many(
        [(1, 0, presence("a", "a-1")), (2, 0, presence("b", "b-1"))]
    )

    assert verdicts == ["accepted", REVOKED]
    assert log.records(2) == []
    assert set(outcomes.rows) == {"a-1"}
    decider.assigned({2})  # back again: its commands are this worker's to decide
    assert await decider.decide_many([(2, 0, presence("b", "b-1"))]) == ["accepted"]
    assert [r["causation_id"] for r in log.records(2)] == ["b-1"]


async def test_a_revocation_waits_for_the_batch_being_decided() -> None:
    log, outcomes = HeldLog(), InMemoryOutcomeRecorder()
    decider = Decider(log, outcomes, presence_ttl=30)
    decider.assigned({1})
    deciding = asyncio.ensure_future(decider.decide_many([(1, 0, presence("a", "a-1"))]))
    await log.writing.wait()  # the batch's events are being written

    revoking = asyncio.ensure_future(decider.revoked({1}))
    await asyncio.sleep(0.05)  # room for the revocation to finish, which it must not
    assert not revoking.done()

    log.release.set()
    assert await deciding == ["accepted"]
    await revoking
    assert set(outcomes.rows) == {"a-1"}  # written before the partition was let go
    assert decider.states.partitions() == {}


async def test_a_state_kept_after_its_partition_was_forgotten_is_not_kept() -> None:
    states = TeamStates(InMemoryEventLog())
    await states.partition(1)
    states.forget({1})

    states.put(1, "a", TeamState(seq=3), position=3)

    assert states.partitions() == {}
