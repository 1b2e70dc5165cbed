"""The states of the teams of the partitions a decider owns: folds of the events log.

A partition is restored when first needed (or as soon as it is assigned): from its latest
snapshots, then caught up by folding the events after the offset they reflect (from offset 0
without snapshots). The outcomes of the last commands in its log are recorded again on the way:
a decider that died after writing a command's events but before recording its outcome left that
command pending, and its decision is in the log (in the recovery window read before the
snapshots' offset, when there are snapshots). Devices online in a restored team hold a presence
lease from the time it was loaded (`TeamState.leases_from_ms`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from msgspec.structs import replace

from streams.domain import ChainError, TeamState, apply_record
from streams.outcome_writer import OutcomeWriter
from streams.outcomes import outcomes_of
from streams.ports import EventLog, SnapshotStore
from streams.snapshots import Restored, restore

log = logging.getLogger(__name__)

# How far back a rebuilt partition re-records outcomes: far more than a worker has in flight.
OUTCOME_RECOVERY_EVENTS = 2000


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
        self._preloads: set[asyncio.Future[Partition]] = set()

    async def team(self, partition: int, team_id: str) -> TeamState:
        return (await self.partition(partition)).teams.get(team_id, TeamState())

    async def partition(self, partition: int) -> Partition:
        """A partition's teams, restored once (concurrent callers share it)."""
        kept = self._partitions.get(partition)
        if kept is not None:
            return kept
        loading = self._loading.get(partition)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(self._load, partition))
            self._loading[partition] = loading
        loaded = await asyncio.shield(loading)
        if self._loading.get(partition) is loading:  # not revoked while loading
            del self._loading[partition]
            self._partitions[partition] = loaded.partition
            if self._outcomes is not None and loaded.recovered:
                # Commands whose events are in the log but whose outcome may not be recorded yet.
                await self._outcomes.record(loaded.recovered)
        return self._partitions.get(partition, loaded.partition)

    def preload(self, partitions: set[int]) -> None:
        """Start restoring newly assigned partitions, so timers see their teams at once."""
        for partition in partitions:
            task = asyncio.ensure_future(self.partition(partition))
            self._preloads.add(task)
            task.add_done_callback(self._preloaded)

    def _preloaded(self, task: asyncio.Future[Partition]) -> None:
        self._preloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The agent's first command of that partition will load it again.
            log.warning("could not preload a partition: %s", task.exception())

    def put(self, partition: int, team_id: str, state: TeamState, position: int | None) -> None:
        """Keep a team's new state; `position`: the offset after its new events, if any."""
        kept = self._partitions.setdefault(partition, Partition())
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
