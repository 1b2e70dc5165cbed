"""When the decider writes its snapshots: every N commands, every T seconds, on revoke."""

from __future__ import annotations

from schemas.commands import StartCall
from schemas.mapper import MAPPER
from streams.decider import Decider
from streams.domain.testing import command
from streams.event_log import InMemoryEventLog
from streams.snapshot_store import InMemorySnapshotStore
from streams.snapshot_writer import SnapshotWriter
from streams.snapshots import restore

PARTITION = 0


def start(team_id: str) -> bytes:
    return MAPPER.command_to_bytes(command("ann", StartCall(call_id="c1"), team_id=team_id))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def decider_with(store: InMemorySnapshotStore, clock: Clock, every: int = 3) -> Decider:
    decider = Decider(InMemoryEventLog(), None, presence_ttl=30, snapshots=store)
    decider.snapshots = SnapshotWriter(
        decider.states, store, every_commands=every, every_seconds=30, clock=clock
    )
    return decider


async def test_snapshots_are_written_every_n_commands_and_not_before() -> None:
    store, clock = InMemorySnapshotStore(), Clock()
    decider = decider_with(store, clock)
    writer = decider.snapshots
    assert writer is not None
    for index in range(2):
        await decider.decide(PARTITION, index, start(f"t{index}"))
    await writer.settled()
    assert store.latest(PARTITION) == []

    await decider.decide(PARTITION, 2, start("t2"))
    await writer.settled()

    assert set(restore(store.latest(PARTITION)).teams) == {"t0", "t1", "t2"}
    assert restore(store.latest(PARTITION)).start == 3


async def test_changed_teams_are_written_after_some_seconds_and_only_they() -> None:
    store, clock = InMemorySnapshotStore(), Clock()
    decider = decider_with(store, clock, every=1000)
    writer = decider.snapshots
    assert writer is not None
    await decider.decide(PARTITION, 0, start("t0"))
    writer.tick()
    await writer.settled()
    assert [key for key, _ in store.latest(PARTITION)] == [b"team:t0", b"checkpoint"]

    await decider.decide(PARTITION, 1, start("t1"))
    clock.now = 29.0
    writer.tick()
    await writer.settled()
    assert b"team:t1" not in dict(store.latest(PARTITION))
    clock.now = 31.0
    writer.tick()
    await writer.settled()

    assert [key for key, _ in store.latest(PARTITION)] == [b"team:t0", b"team:t1", b"checkpoint"]
    assert not decider.states.partitions()[PARTITION].dirty


async def test_a_revoked_partition_is_written_before_it_is_forgotten() -> None:
    store, clock = InMemorySnapshotStore(), Clock()
    decider = decider_with(store, clock, every=1000)
    await decider.decide(PARTITION, 0, start("t0"))

    await decider.revoked({PARTITION})

    assert set(restore(store.latest(PARTITION)).teams) == {"t0"}
    assert decider.states.partitions() == {}
