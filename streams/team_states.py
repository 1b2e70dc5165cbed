"""The states of the teams of the partitions a decider owns: folds of the events log.

A partition is rebuilt from the log when first needed (or as soon as it is assigned), and the
outcomes of the last commands in its log are recorded again on the way: a decider that died
after writing a command's events but before recording its outcome left that command pending,
and its decision is in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from streams.domain import TeamState, apply_record
from streams.outcomes import outcomes_of
from streams.ports import EventLog, OutcomeRecorder

log = logging.getLogger(__name__)

# How far back a rebuilt partition re-records outcomes: far more than a worker has in flight.
OUTCOME_RECOVERY_EVENTS = 2000


class TeamStates:
    """The states of the teams of the partitions this worker owns, loaded from the log."""

    def __init__(self, events: EventLog, outcomes: OutcomeRecorder | None = None) -> None:
        self._events = events
        self._outcomes = outcomes
        self._partitions: dict[int, dict[str, TeamState]] = {}
        self._loading: dict[int, asyncio.Future[dict[str, TeamState]]] = {}
        self._preloads: set[asyncio.Future[dict[str, TeamState]]] = set()

    async def team(self, partition: int, team_id: str) -> TeamState:
        return (await self.partition(partition)).get(team_id, TeamState())

    async def partition(self, partition: int) -> dict[str, TeamState]:
        """The teams of a partition, rebuilt from the log once (concurrent callers share it)."""
        teams = self._partitions.get(partition)
        if teams is not None:
            return teams
        loading = self._loading.get(partition)
        if loading is None:
            loading = asyncio.ensure_future(asyncio.to_thread(self._load, partition))
            self._loading[partition] = loading
        teams = await asyncio.shield(loading)
        if self._loading.get(partition) is loading:  # not revoked while loading
            del self._loading[partition]
            self._partitions[partition] = teams
        return self._partitions.get(partition, teams)

    def preload(self, partitions: set[int]) -> None:
        """Start rebuilding newly assigned partitions, so timers see their teams at once."""
        for partition in partitions:
            task = asyncio.ensure_future(self.partition(partition))
            self._preloads.add(task)
            task.add_done_callback(self._preloaded)

    def _preloaded(self, task: asyncio.Future[dict[str, TeamState]]) -> None:
        self._preloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The agent's first command of that partition will load it again.
            log.warning("could not preload a partition: %s", task.exception())

    def put(self, partition: int, team_id: str, state: TeamState) -> None:
        self._partitions.setdefault(partition, {})[team_id] = state

    def forget(self, partitions: set[int]) -> None:
        """Drop partitions another worker may now own; they are reloaded if they come back."""
        for partition in partitions:
            self._partitions.pop(partition, None)
            self._loading.pop(partition, None)

    def loaded(self) -> dict[int, dict[str, TeamState]]:
        return self._partitions

    def _load(self, partition: int) -> dict[str, TeamState]:
        teams: dict[str, TeamState] = {}
        tail: deque[dict[str, Any]] = deque(maxlen=OUTCOME_RECOVERY_EVENTS)
        records = self._events.records(partition)
        for record in records:
            team_id = str(record["team_id"])
            before = teams.get(team_id, TeamState())
            teams[team_id] = apply_record(before, record)
            if teams[team_id].seq != before.seq:  # a repeated (team_id, seq) is skipped
                tail.append(record)
        log.info(
            "partition %d: %d teams rebuilt from %d events", partition, len(teams), len(records)
        )
        recent = list(tail)
        if len(recent) == OUTCOME_RECOVERY_EVENTS:  # the oldest command may be cut in two
            recent = [r for r in recent if r["causation_id"] != recent[0]["causation_id"]]
        if self._outcomes is not None and recent:
            # Commands whose events are in the log but whose outcome may not be recorded yet.
            self._outcomes.record(outcomes_of(recent))
        return teams
