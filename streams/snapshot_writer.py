"""Writes the decider's snapshots: batched per partition, after the events, off the command path.

A partition's changed teams are written every `every_commands` commands with events or every
`every_seconds` (whichever first), and when the partition is revoked or the worker stops; then
its checkpoint. The states written were kept after their events were acknowledged, so a snapshot
never runs ahead of the log: a crash before it only lengthens the next fold.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from config.faults import NO_FAULTS, Faults
from streams.domain import TeamState
from streams.ports import SnapshotStore
from streams.snapshots import TeamSnapshot, checkpoint_entry, team_entry
from streams.team_states import Partition, TeamStates

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_COMMANDS = 1000
#: Fault point (config/faults.py): a partition's snapshot (teams and checkpoint) is in the store.
AFTER_SNAPSHOT_WRITTEN = "snapshots.after_written"
SNAPSHOT_EVERY_SECONDS = 30.0


class SnapshotWriter:
    """Writes the changed teams of the restored partitions to the snapshot store."""

    def __init__(
        self,
        states: TeamStates,
        store: SnapshotStore,
        *,
        every_commands: int = SNAPSHOT_EVERY_COMMANDS,
        every_seconds: float = SNAPSHOT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        faults: Faults = NO_FAULTS,
    ) -> None:
        self._states = states
        self._faults = faults
        self._store = store
        self._every_commands = every_commands
        self._every_seconds = every_seconds
        self._clock = clock
        self._written_at: dict[int, float] = {}
        self._writing: dict[int, asyncio.Task[None]] = {}

    def decided(self, partition: int) -> None:
        """After a command of `partition` was decided: start a write if one is due."""
        kept = self._states.partitions().get(partition)
        if kept is not None and kept.decided_since_snapshot >= self._every_commands:
            self._start(partition)

    def tick(self) -> None:
        """Periodically: start a write of each partition changed and not written for a while."""
        now = self._clock()
        for partition, kept in list(self._states.partitions().items()):
            since = now - self._written_at.get(partition, float("-inf"))
            if kept.dirty and since >= self._every_seconds:
                self._start(partition)

    async def flush(self, partitions: set[int] | None = None, timeout: float = 10.0) -> None:
        """Write these partitions (default: all restored ones) now, within `timeout` seconds."""
        restored = self._states.partitions()
        chosen = set(restored) if partitions is None else partitions & set(restored)
        if not chosen:
            return
        waits = [asyncio.ensure_future(self._after_writing(p)) for p in chosen]
        done, late = await asyncio.wait(waits, timeout=timeout)
        if late:
            log.warning("%d snapshot writes did not finish in %.0f s", len(late), timeout)
        for task in done:
            if task.exception() is not None:
                log.warning("a snapshot write failed: %s", task.exception())

    async def settled(self) -> None:
        """Wait for the writes in flight (their failures are logged, not raised)."""
        if self._writing:
            await asyncio.wait(list(self._writing.values()))

    async def _after_writing(self, partition: int) -> None:
        """Write the partition once the write in flight (if any) is done: in order."""
        writing = self._writing.get(partition)
        if writing is not None:
            await asyncio.wait([writing])
        await self.write(partition)

    def _start(self, partition: int) -> None:
        if partition in self._writing:
            return  # one write per partition at a time; the next trigger takes the rest
        task = asyncio.ensure_future(self.write(partition))
        self._writing[partition] = task
        task.add_done_callback(lambda done: self._written(partition, done))

    def _written(self, partition: int, task: asyncio.Task[None]) -> None:
        if self._writing.get(partition) is task:
            del self._writing[partition]
        if not task.cancelled() and task.exception() is not None:
            log.warning("partition %d: snapshot write failed: %s", partition, task.exception())

    async def write(self, partition: int) -> None:
        """Write the partition's changed teams as of now, then its checkpoint."""
        kept = self._states.partitions().get(partition)
        if kept is None or not kept.dirty:
            return
        # Taken at one instant (states are immutable): the teams as of `kept.position`.
        captured = {team_id: kept.teams[team_id] for team_id in kept.dirty}
        position = kept.position
        kept.decided_since_snapshot = 0
        self._written_at[partition] = self._clock()
        entries = await asyncio.to_thread(_entries, captured, position)
        await self._store.write(partition, entries)
        self._faults.point(AFTER_SNAPSHOT_WRITTEN)
        _clean(kept, captured)
        log.debug(
            "partition %d: %d team snapshots at offset %d", partition, len(captured), position
        )


def _entries(captured: dict[str, TeamState], position: int) -> list[tuple[bytes, bytes]]:
    teams = [team_entry(TeamSnapshot(t, position, s)) for t, s in captured.items()]
    return [*teams, checkpoint_entry(position)]


def _clean(kept: Partition, captured: dict[str, TeamState]) -> None:
    """Teams not changed since they were captured are clean again."""
    for team_id, state in captured.items():
        if kept.teams.get(team_id) is state:
            kept.dirty.discard(team_id)
