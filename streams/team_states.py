"""The states of the teams of the partitions a decider owns: folds of the events log.

A partition is restored when first needed (or soon after it is assigned): from its latest
snapshots, then caught up by folding the events after the offset they reflect (from offset 0
without snapshots). A partition a command waits for is restored at once; the other assigned
partitions are restored one after the other in the background, paused while a command waits,
so that a takeover's first decision waits for one partition, not for all of them.

The outcomes of the last commands in a restored partition's log are recorded again: a decider
that died after writing a command's events but before recording its outcome left that command
pending, and its decision is in the log (in the recovery window read before the snapshots'
offset, when there are snapshots). This is done in the background, so it does not delay the
first decision either; it cannot be stranded: a dead decider's unrecorded outcomes lie in its
last `MAX_QUEUED_EVENTS` events (the outcome writer's bound), so they stay inside the recovery
window of a next owner as long as the partition has not grown by more than the slack
(`OUTCOME_RECOVERY_EVENTS - MAX_QUEUED_EVENTS`) since it was restored; past the slack, deciding
waits until the recovered outcomes are recorded or queued in the outcome writer (whose bound
then holds everything). Devices online in a restored team hold a presence lease from the time
it was loaded (`TeamState.leases_from_ms`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from streams.domain import ChainError, TeamState, apply_record
from streams.outcome_writer import MAX_QUEUED_EVENTS, OutcomeWriter
from streams.outcomes import outcomes_of
from streams.ports import EventLog, SnapshotStore
from streams.snapshots import Restored, restore

log = logging.getLogger(__name__)

# How far back a rebuilt partition re-records outcomes: far more than a worker has in flight.
OUTCOME_RECOVERY_EVENTS = 2000
# Events a partition may grow by before its recovered outcomes must be recorded (or queued).
RECOVERY_SLACK = OUTCOME_RECOVERY_EVENTS - MAX_QUEUED_EVENTS
# Threads restoring partitions: one a command waits for beside one preloading.
RESTORE_THREADS = 2


@dataclass
class Partition:
    """The teams of one partition, the offset after the last event they reflect, and the teams
    changed since their last snapshot was written."""

    teams: dict[str, TeamState] = field(default_factory=dict)
    position: int = 0
    dirty: set[str] = field(default_factory=set)
    decided_since_snapshot: int = 0


@dataclass
class _Loaded:
    partition: Partition
    recovered: list[dict[str, Any]]  # outcome rows of the last commands in the log


@dataclass
class _Recovery:
    """The recording of a restored partition's recent outcomes, and where the partition was."""

    task: asyncio.Future[None]
    position: int


class TeamStates:
    """The states of the teams of the partitions this worker owns, restored from the log."""

    def __init__(
        self,
        events: EventLog,
        outcomes: OutcomeWriter | None = None,
        snapshots: SnapshotStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._events = events
        self._clock = clock
        self._outcomes = outcomes
        self._snapshots = snapshots
        self._partitions: dict[int, Partition] = {}
        self._loading: dict[int, asyncio.Future[_Loaded]] = {}
        self._recovering: dict[int, _Recovery] = {}
        # Partitions assigned and not restored yet, restored in the background one at a time.
        self._queued: deque[int] = deque()
        self._preloader: asyncio.Future[None] | None = None
        self._waiting = 0  # commands waiting for a partition to be restored
        self._quiet = asyncio.Event()  # set when none is
        self._quiet.set()
        self._restorer = ThreadPoolExecutor(RESTORE_THREADS, thread_name_prefix="restore")

    async def team(self, partition: int, team_id: str) -> TeamState:
        """A team's state to decide on, once its partition is restored."""
        kept = self._partitions.get(partition)
        if kept is None:
            self._waiting += 1
            self._quiet.clear()
            try:
                kept = await self.partition(partition)
            finally:
                self._waiting -= 1
                if not self._waiting:
                    self._quiet.set()
        recovery = self._recovering.get(partition)
        if recovery is not None and kept.position - recovery.position >= RECOVERY_SLACK:
            await asyncio.shield(recovery.task)  # else its outcomes could leave the window
        return kept.teams.get(team_id, TeamState())

    async def partition(self, partition: int) -> Partition:
        """A partition's teams, restored once (concurrent callers share it)."""
        kept = self._partitions.get(partition)
        if kept is not None:
            return kept
        loading = self._loading.get(partition)
        if loading is None:
            loop = asyncio.get_running_loop()
            loading = asyncio.ensure_future(
                loop.run_in_executor(self._restorer, self._load, partition)
            )
            self._loading[partition] = loading
        try:
            loaded = await asyncio.shield(loading)
        except Exception:
            if self._loading.get(partition) is loading:
                del self._loading[partition]  # the next command of the partition tries again
            raise
        if self._loading.get(partition) is loading:  # not revoked while loading
            del self._loading[partition]
            self._partitions[partition] = loaded.partition
            self._recover(partition, loaded)
        return self._partitions.get(partition, loaded.partition)

    def _recover(self, partition: int, loaded: _Loaded) -> None:
        """Record again, in the background, the outcomes of the partition's last commands (their
        events are in the log; their outcomes may not be recorded)."""
        if self._outcomes is None or not loaded.recovered:
            return
        task = asyncio.ensure_future(self._record_when_quiet(self._outcomes, loaded.recovered))
        self._recovering[partition] = _Recovery(task, loaded.partition.position)

        def recorded(done: asyncio.Future[None]) -> None:
            kept = self._recovering.get(partition)
            if kept is not None and kept.task is done:
                del self._recovering[partition]
            if not done.cancelled() and done.exception() is not None:
                log.error("partition %d: outcomes not recovered: %s", partition, done.exception())

        task.add_done_callback(recorded)

    async def _record_when_quiet(self, outcomes: OutcomeWriter, rows: list[dict[str, Any]]) -> None:
        await self._quiet.wait()  # a command waiting for its partition's restore goes first
        await outcomes.record(rows)

    async def recovered(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds for the outcomes being recovered; whether they were."""
        tasks = [recovery.task for recovery in self._recovering.values()]
        if not tasks:
            return True
        _, late = await asyncio.wait(tasks, timeout=timeout)
        return not late

    def preload(self, partitions: set[int]) -> None:
        """Restore newly assigned partitions in the background, so timers see their teams soon."""
        queued = set(self._queued)
        self._queued.extend(sorted(p for p in partitions if p not in queued))
        if self._preloader is None or self._preloader.done():
            self._preloader = asyncio.ensure_future(self._preload())

    @property
    def preloading(self) -> bool:
        """Whether assigned partitions are still waiting to be restored in the background."""
        return self._preloader is not None and not self._preloader.done()

    async def _preload(self) -> None:
        while self._queued:
            await self._quiet.wait()  # a command waiting for its partition goes first
            if not self._queued:
                return
            partition = self._queued.popleft()
            try:
                await self.partition(partition)
            except Exception as exc:
                # The agent's first command of that partition will load it again.
                log.warning("could not preload partition %d: %s", partition, exc)

    def put(self, partition: int, team_id: str, state: TeamState, position: int | None) -> None:
        """Keep a team's new state; `position`: the offset after its new events, if any. A
        partition forgotten meanwhile stays forgotten: it is restored whole if it comes back
        (a partition of this one team would hide its other teams and its recovery)."""
        kept = self._partitions.get(partition)
        if kept is None:
            return
        kept.teams[team_id] = state
        if position is not None:  # a lease refreshed alone is no reason for a new snapshot
            kept.dirty.add(team_id)
            kept.position = max(kept.position, position)
            kept.decided_since_snapshot += 1

    def forget(self, partitions: set[int]) -> None:
        """Drop partitions another worker may now own; they are reloaded if they come back."""
        for partition in partitions:
            self._partitions.pop(partition, None)
            self._loading.pop(partition, None)
        self._queued = deque(p for p in self._queued if p not in partitions)

    def loaded(self) -> dict[int, dict[str, TeamState]]:
        return {number: kept.teams for number, kept in self._partitions.items()}

    def partitions(self) -> dict[int, Partition]:
        """The restored partitions (for the snapshot writer)."""
        return self._partitions

    def _load(self, partition: int) -> _Loaded:
        restored = Restored()
        if self._snapshots is not None:
            try:
                restored = restore(self._snapshots.latest(partition))
            except Exception as exc:
                log.warning(
                    "partition %d: snapshots unreadable, folding the log: %s", partition, exc
                )
        try:
            return self._fold(partition, restored)
        except ChainError as exc:
            if not restored.teams:
                raise
            log.warning("partition %d: snapshots do not continue the log (%s)", partition, exc)
            return self._fold(partition, Restored())

    def _fold(self, partition: int, restored: Restored) -> _Loaded:
        """Snapshots caught up with the events from `restored.start`, and the recent outcomes.

        The recovery window's events before `restored.start` are read but not folded in.
        """
        kept = Partition(
            teams={team_id: s.state for team_id, s in restored.teams.items()},
            position=restored.start,
        )
        reflected = {team_id: s.offset for team_id, s in restored.teams.items()}
        tail: deque[dict[str, Any]] = deque(maxlen=OUTCOME_RECOVERY_EVENTS)
        in_window: set[tuple[str, Any]] = set()
        folded = 0
        start = max(0, restored.start - OUTCOME_RECOVERY_EVENTS)
        for offset, record in self._events.read(partition, start):
            kept.position = offset + 1
            team_id = str(record["team_id"])
            if offset < reflected.get(team_id, 0):  # already in the team's snapshot
                if (team_id, record.get("seq")) not in in_window:  # a repeat is skipped
                    in_window.add((team_id, record.get("seq")))
                    tail.append(record)
                continue
            before = kept.teams.get(team_id, TeamState())
            after = apply_record(before, record)
            folded += 1
            if after.seq != before.seq:  # a repeated (team_id, seq) is skipped
                kept.teams[team_id] = after
                kept.dirty.add(team_id)
                tail.append(record)
        kept.position = max(kept.position, restored.start)
        # The leases the old owner kept are not in the log: online devices get one from now.
        loaded_ms = int(self._clock() * 1000)
        kept.teams = {t: replace(s, leases_from_ms=loaded_ms) for t, s in kept.teams.items()}
        log.info(
            "partition %d: %d teams restored (%d from snapshots, %d unreadable) and %d events "
            "folded from offset %d",
            partition,
            len(kept.teams),
            len(restored.teams),
            restored.ignored,
            folded,
            restored.start,
        )
        return _Loaded(kept, _recovered(list(tail)))


def _recovered(recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(recent) == OUTCOME_RECOVERY_EVENTS:  # the oldest command may be cut in two
        recent = [r for r in recent if r["causation_id"] != recent[0]["causation_id"]]
    return outcomes_of(recent) if recent else []
