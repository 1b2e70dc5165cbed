"""Decider snapshots: exact round trips, a restore from them equals the fold of the whole log,
and a snapshot that cannot be read or does not fit the log is never trusted."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from schemas.commands import CommandPayload, JoinCall, StartCall
from schemas.mapper import MAPPER
from streams import snapshots
from streams.decider import Decider
from streams.domain import TeamState, fold, recorded
from streams.domain.testing import command
from streams.event_log import InMemoryEventLog
from streams.outcomes import InMemoryOutcomeRecorder
from streams.ports import OutcomeRecorder, OutcomesUnavailable
from streams.snapshot_store import InMemorySnapshotStore
from streams.snapshots import (
    TeamSnapshot,
    UnreadableSnapshot,
    checkpoint_entry,
    decode_team,
    restore,
    team_entry,
)
from streams.team_states import OUTCOME_RECOVERY_EVENTS, TeamStates
from tests.contracts import decided_records
from tests.unit.test_decider_properties import STEPS, run

PARTITION = 2


class WatchedLog(InMemoryEventLog):
    """An events log that notes where each read started."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[int] = []

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        self.starts.append(start)
        return super().read(partition, start)


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS, st.integers(0, 2**40))
def test_a_state_round_trips_through_snapshot_bytes_exactly(steps: list[Any], offset: int) -> None:
    state = recorded(run(steps).state)  # a snapshot holds no leases: the log does not
    snapshot = TeamSnapshot("t", offset, state)

    again = decode_team(*team_entry(snapshot))

    assert again == snapshot
    assert list(again.state.decided) == list(state.decided)  # the order the bounds rely on
    assert msgspec.msgpack.encode(again.state) == msgspec.msgpack.encode(state)


@settings(database=None, max_examples=100, deadline=None)
@for_all(STEPS, st.integers(0, 10_000))
def test_a_snapshot_and_the_tail_fold_to_the_fold_of_the_whole_log(
    steps: list[Any], pick: int
) -> None:
    records = run(steps).records
    cut = pick % (len(records) + 1)
    log, store = WatchedLog(), InMemorySnapshotStore()
    asyncio.run(log.write(PARTITION, records))
    snapshot = TeamSnapshot("t", cut, fold(records[:cut]))
    asyncio.run(store.write(PARTITION, [team_entry(snapshot), checkpoint_entry(cut)]))

    restored = asyncio.run(TeamStates(log, None, store).team(PARTITION, "t"))

    assert recorded(restored) == fold(records)
    assert log.starts == [max(0, cut - OUTCOME_RECOVERY_EVENTS)]


def raw(team_id: str, actor: str, payload: CommandPayload, command_id: str, at: float) -> bytes:
    each = command(actor, payload, at=at, team_id=team_id, command_id=command_id)
    return MAPPER.command_to_bytes(each)


COMMANDS = [
    raw("a", "ann", StartCall(call_id="c1"), "a-start", 0),
    raw("b", "ann", StartCall(call_id="c1"), "b-start", 1),
    raw("a", "bob", JoinCall(call_id="c1"), "a-join", 2),
]


async def decided(
    log: InMemoryEventLog,
    store: InMemorySnapshotStore,
    outcomes: OutcomeRecorder | None = None,
    commands: list[bytes] = COMMANDS,
) -> Decider:
    """A decider that decided the commands and wrote its snapshots."""
    decider = Decider(log, outcomes, presence_ttl=30, snapshots=store)
    for offset, each in enumerate(commands):
        await decider.decide(PARTITION, offset, each)
    assert decider.snapshots is not None
    await decider.snapshots.flush()
    return decider


def folded(log: InMemoryEventLog) -> dict[str, TeamState]:
    by_team: dict[str, list[dict[str, Any]]] = {}
    for record in log.records(PARTITION):
        by_team.setdefault(record["team_id"], []).append(record)
    return {team_id: fold(records) for team_id, records in by_team.items()}


async def restored(log: InMemoryEventLog, store: InMemorySnapshotStore) -> dict[str, TeamState]:
    """The restored teams as the log records them (a restore also gives each a fresh lease)."""
    teams = (await TeamStates(log, None, store).partition(PARTITION)).teams
    return {team_id: recorded(state) for team_id, state in teams.items()}


async def test_a_decider_writes_each_team_and_then_the_checkpoint_at_its_log_position() -> None:
    log, store = WatchedLog(), InMemorySnapshotStore()
    await decided(log, store)
    end = len(log.records(PARTITION))

    entries = store.latest(PARTITION)
    *teams, last = [key for key, _ in entries]
    assert (sorted(teams), last) == ([b"team:a", b"team:b"], b"checkpoint")
    assert restore(entries).start == end
    assert {t: s.state for t, s in restore(entries).teams.items()} == folded(log)

    want = folded(log)
    log.starts.clear()
    assert await restored(log, store) == want
    assert log.starts == [0]  # the recovery window: the log is shorter than it


async def test_only_the_events_after_the_snapshots_are_folded() -> None:
    log, store = WatchedLog(), InMemorySnapshotStore()
    for team in range(OUTCOME_RECOVERY_EVENTS // 10 + 1):  # more events than the window
        await log.write(PARTITION, decided_records(f"x{team}", *[StartCall(call_id="c")] * 10))
    await decided(log, store)
    end, want = len(log.records(PARTITION)), folded(log)
    log.starts.clear()

    assert await restored(log, store) == want
    assert log.starts == [end - OUTCOME_RECOVERY_EVENTS]


@pytest.mark.parametrize(
    "value",
    [
        b"not msgpack \xc1",
        msgspec.msgpack.encode({"version": 99, "team_id": "a", "offset": 0, "state": {}}),
        msgspec.msgpack.encode({"team_id": "a", "offset": 0, "state": {}}),
        msgspec.msgpack.encode({"version": 1, "team_id": "a", "offset": 0, "state": {"seq": "x"}}),
        msgspec.msgpack.encode({"version": 1, "team_id": "b", "offset": 0, "state": {}}),
    ],
    ids=["garbage", "unknown-version", "no-version", "bad-field", "another-team"],
)
async def test_a_team_snapshot_that_cannot_be_read_is_ignored_and_the_log_folded_from_0(
    value: bytes,
) -> None:
    log, store = WatchedLog(), InMemorySnapshotStore()
    await decided(log, store)
    with pytest.raises(UnreadableSnapshot):
        decode_team(b"team:a", value)
    # Written before the checkpoint, as a good one would be: still not trusted.
    entries = store.latest(PARTITION)
    store.partitions[PARTITION] = {b"team:a": value, **dict(entries[1:])}
    want = folded(log)
    log.starts.clear()

    assert await restored(log, store) == want
    assert log.starts == [0]


async def test_a_checkpoint_that_cannot_be_read_folds_from_0() -> None:
    log, store = WatchedLog(), InMemorySnapshotStore()
    await decided(log, store)
    await store.write(PARTITION, [(b"checkpoint", b"\x00")])

    assert restore(store.latest(PARTITION)).start == 0
    assert await restored(log, store) == folded(log)


async def test_a_snapshot_that_does_not_continue_the_log_is_dropped_for_a_full_fold() -> None:
    log, store = InMemoryEventLog(), InMemorySnapshotStore()
    await decided(log, store)
    end = len(log.records(PARTITION))
    # Claims to reflect the log to its end, but is the state of a team with no events.
    await store.write(PARTITION, [team_entry(TeamSnapshot("a", end - 1, TeamState()))])

    assert await restored(log, store) == folded(log)


async def test_an_old_snapshot_version_is_upcast(monkeypatch: pytest.MonkeyPatch) -> None:
    log, store = InMemoryEventLog(), InMemorySnapshotStore()
    await decided(log, store)
    monkeypatch.setattr(snapshots, "SNAPSHOT_VERSION", 2)
    upcast: list[str] = []

    def upcaster(data: dict[str, Any]) -> dict[str, Any]:
        upcast.append(str(data.get("team_id", "checkpoint")))
        return data

    monkeypatch.setitem(snapshots.UPCASTERS, 1, upcaster)

    assert restore(store.latest(PARTITION)).start == len(log.records(PARTITION))
    assert await restored(log, store) == folded(log)
    assert sorted(upcast[:3]) == ["a", "b", "checkpoint"]  # each value went through it


class DownOutcomes(InMemoryOutcomeRecorder):
    """An outcomes store that is unreachable."""

    def record(self, rows: list[dict[str, Any]]) -> None:
        raise OutcomesUnavailable("the database is down")


async def test_outcomes_of_commands_inside_the_snapshots_are_recovered_from_the_tail() -> None:
    log, store = InMemoryEventLog(), InMemorySnapshotStore()
    down = await decided(log, store, DownOutcomes())
    assert down.outcomes is not None and down.outcomes.queued == 3  # then the worker died
    outcomes = InMemoryOutcomeRecorder()

    # A new owner of the partition: its first command finds the teams restored from snapshots.
    again = Decider(log, outcomes, presence_ttl=30, snapshots=store)
    assert await again.decide(PARTITION, 0, COMMANDS[0]) == "no_events"
    assert await again.states.recovered(timeout=10)

    assert {k: row["status"] for k, row in outcomes.rows.items()} == {
        "a-start": "accepted",
        "b-start": "accepted",
        "a-join": "accepted",
    }
