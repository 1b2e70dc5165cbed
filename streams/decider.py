"""The decider: one writer per team partition turns commands into events, race-free.

Per batch of commands (gathered by `take_batches`, up to `DECIDE_BATCH`), in this order (NOTES.md,
"Deciding without losing or doubling"):
1. decide each command against its team's state, which is the fold of the events already in
   the log and of the batch's commands before it;
2. write the batch's events, each to its command's partition of the events topic, in order,
   and await the broker's acks (all of them);
3. keep the new states in memory, record the outcomes for the commands service in one
   transaction (retried, and queued while the database is down: `OutcomeWriter`);
4. let Faust commit the commands' offsets (after the agent has processed the batch).
A partition handed to another worker in a rebalance is fenced off here: the revocation waits
for the batch being decided (its events and outcomes written) before the worker rejoins the
group, and commands of the partition still in hand afterwards are neither decided nor
acknowledged (Faust does not wait for its agents: `stream_wait_empty=False`); its next owner
reads them from the last commit. Without that, the old owner could write events behind the
back of a new owner that had already restored the team from the log: two writers of one seq.
Every so often, off this path, the changed teams' states are written as snapshots with the
events offset they reflect (`SnapshotWriter`), so that a new owner of the partition folds only
the events after them.
A crash anywhere re-reads the command after a restart; the state is rebuilt from the log,
which already holds any events written before the crash, so the command is found decided
(its id is in the state) and is not decided twice. A crash between 2 and 3 also leaves the
outcome unrecorded: restoring the partition records it from the log (`TeamStates`, in the
background: a takeover's first decision does not wait for it).

Presence leases. A heartbeat that changes nothing a person sees writes no event: it refreshes
the device's lease in the kept state and is recorded `accepted` with no events (position: the
team's seq). Its decision (no events) depends only on what the log records (is the device
known, expired, set offline), so it is the same when re-decided; re-deciding it (it is not
among the decided ids) refreshes the lease again, which is idempotent, and records the same
outcome again, which changes nothing. A restored partition gives every device online in the
log a fresh lease from the time it was loaded (`TeamState.leases_from_ms`): the heartbeats the
old owner heard are not in the log, and nobody should go offline because a worker restarted.
An expiry tick is the one decision that depends on leases (which devices are stale, and the
last heartbeat it records for them). Re-deciding one after a crash is safe: its records were
either acknowledged before the crash, so the restored state holds them and the tick is found
decided, or they are not in the log, so no one saw them, and the tick, answered to no one, is
decided afresh from what the new owner knows (at worst a device expires a lease later).
`Decider` does the above; `install_decider` wires it into a Faust app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Histogram

from config.faults import NO_FAULTS, Faults
from schemas.commands import RecordHeartbeat
from schemas.mapper import MAPPER, MalformedEnvelope
from schemas.positions import command_position
from streams.batching import Window, take_batches
from streams.domain import TeamState, decide_and_seal
from streams.outcome_writer import OutcomeWriter
from streams.outcomes import lease_outcome, outcomes_of
from streams.ports import EventLog, OutcomeRecorder, SnapshotStore
from streams.presence_timer import PresenceTimer, presence_timer_interval
from streams.snapshot_writer import SNAPSHOT_EVERY_COMMANDS, SnapshotWriter
from streams.team_states import TeamStates

log = logging.getLogger(__name__)

# Fault points (config/faults.py): a crash at either leaves the command to its redelivery.
BEFORE_EVENTS_WRITTEN = "decider.before_events_written"
AFTER_EVENTS_ACKED = "decider.after_events_acked"  # and before the outcome is recorded
AFTER_OUTCOMES_RECORDED = "decider.after_outcomes_recorded"  # before the commands are committed
# Commands decided together at most, and how long a batch gathers commands after its first one:
# from 1 ms when the last batch was small (a lone command waits little) to 20 ms once batches
# hold 20 (streams/batching.py). A fixed 5 ms window left 1,000 heartbeats/s behind (batches too
# small for their round trips); 20 ms decided them all (bench/heartbeats.py --direct).
DECIDE_BATCH = 500
DECIDE_WINDOW = Window(shortest=0.001, longest=0.02, full_at=20)
# The longest wait between two attempts at a batch that failed (decide_surely).
MAX_RETRY_DELAY = 10.0
# A rebalance or a stop waits this long at most for the snapshots (they only shorten a fold).
SNAPSHOT_FLUSH_SECONDS = 5.0
# A revocation waits this long at most for the batch being decided (under Faust's rebalance
# timeout, past which the group would go on without this worker anyway).
REVOKE_WAIT_SECONDS = 30.0
#: The verdict on a command of a partition revoked before it was decided: left to the next owner.
REVOKED = "revoked"


@dataclass
class _Batch:
    """What deciding a batch of commands produced, before any of it is written."""

    states: dict[tuple[int, str], TeamState] = field(default_factory=dict)  # as left so far
    records: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by partition
    kept: list[tuple[int, str, TeamState, bool]] = field(default_factory=list)  # in order
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def keep(
        self, partition: int, team_id: str, after: TeamState, records: list[dict[str, Any]]
    ) -> None:
        self.states[(partition, team_id)] = after
        self.kept.append((partition, team_id, after, bool(records)))
        if records:
            self.records.setdefault(partition, []).extend(records)


class Decider:
    """Decides the commands of the partitions this worker owns, one at a time, in log order."""

    def __init__(
        self,
        events: EventLog,
        outcomes: OutcomeRecorder | None,
        *,
        presence_ttl: float,
        faults: Faults = NO_FAULTS,
        snapshots: SnapshotStore | None = None,
        snapshot_every: int = SNAPSHOT_EVERY_COMMANDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.presence_ttl = presence_ttl
        self.outcomes = None if outcomes is None else OutcomeWriter(outcomes)
        # The clock dates the leases of a restored partition, never a decision.
        self.states = TeamStates(events, self.outcomes, snapshots, clock=clock)
        self.snapshots = (
            None
            if snapshots is None
            else SnapshotWriter(
                self.states, snapshots, every_commands=snapshot_every, faults=faults
            )
        )
        self._events = events
        self._faults = faults
        self._revoked: set[int] = set()  # revoked and not assigned again: decided elsewhere
        self._deciding = asyncio.Lock()  # held while a batch is decided and written

    async def decide(self, partition: int, offset: int, raw: bytes) -> str:
        """Decide the command at `offset` of commands partition `partition`; what became of it."""
        return (await self.decide_many([(partition, offset, raw)]))[0]

    async def decide_many(self, commands: Sequence[tuple[int, int, bytes]]) -> list[str]:
        """Decide (partition, offset, raw) commands in log order, as a poll delivers them; what
        became of each. Their events are written together (each partition's in one go), then
        their outcomes are recorded together (one transaction). A command of a revoked
        partition is left alone (verdict `REVOKED`)."""
        async with self._deciding:
            return await self._decide_many(commands)

    async def _decide_many(self, commands: Sequence[tuple[int, int, bytes]]) -> list[str]:
        batch = _Batch()
        verdicts = [
            REVOKED if command[0] in self._revoked else await self._decide_one(batch, *command)
            for command in commands
        ]
        positions: dict[int, int | None] = {}
        if batch.records:
            self._faults.point(BEFORE_EVENTS_WRITTEN)
            written = await asyncio.gather(
                *(self._events.write(p, records) for p, records in batch.records.items())
            )
            positions = dict(zip(batch.records, written, strict=True))
            self._faults.point(AFTER_EVENTS_ACKED)
        for partition, team_id, after, wrote in batch.kept:
            self.states.put(partition, team_id, after, positions[partition] if wrote else None)
        if self.outcomes is not None:
            await self.outcomes.record(batch.outcomes)
            self._faults.point(AFTER_OUTCOMES_RECORDED)
        if self.snapshots is not None:
            for partition in batch.records:
                self.snapshots.decided(partition)
        return verdicts

    async def decide_surely(
        self, commands: Sequence[tuple[int, int, bytes]], first_delay: float = 0.5
    ) -> list[str]:
        """`decide_many` until it succeeds: the poll's commands are acknowledged only after.

        A failure (the broker or the database down past their clients' own retries) may come
        after some events were written: the batch's partitions are forgotten and restored
        from the log, where those events are (their outcomes recovered with them), so each
        command is decided again exactly once, never skipped.
        """
        delay = first_delay
        while True:
            try:
                return await self.decide_many(commands)
            except Exception as exc:  # CancelledError (a stop) is not one: it goes through
                partitions = {partition for partition, _, _ in commands}
                log.error(
                    "deciding %d commands of partitions %s failed (%s); they are decided again "
                    "from the log in %.1f s",
                    len(commands),
                    sorted(partitions),
                    exc,
                    delay,
                )
                self.states.forget(partitions)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY)

    async def _decide_one(self, batch: _Batch, partition: int, offset: int, raw: bytes) -> str:
        """Decide one command against its team's state as the batch left it."""
        try:
            envelope = MAPPER.decode_command_envelope(raw)
        except MalformedEnvelope as exc:
            log.error("skipping a command with a broken envelope: %s", exc)
            return "malformed"
        state = batch.states.get((partition, envelope.team_id))
        if state is None:
            state = await self.states.team(partition, envelope.team_id)
        already = envelope.command_id in state.decided
        records, after = decide_and_seal(state, envelope, presence_ttl=self.presence_ttl)
        batch.keep(partition, envelope.team_id, after, records)
        where = command_position(partition, offset)
        if records:
            batch.outcomes.extend(outcomes_of(records, where))
            return "rejected" if records[0]["type"] == "command.rejected" else "accepted"
        if already or envelope.type != RecordHeartbeat.TYPE:
            return "no_events"  # decided before, or a timer tick that changed nothing
        batch.outcomes.append(lease_outcome(envelope, after, where))
        return "accepted"

    def assigned(self, partitions: set[int]) -> None:
        """Partitions this worker now owns: restore their teams (in the background)."""
        self._revoked -= partitions
        self.states.preload(partitions)

    async def revoked(self, partitions: set[int]) -> None:
        """Partitions another worker may now own: no command of theirs is decided from now on;
        once the batch being decided is written, snapshot them, then forget their teams."""
        self._revoked |= partitions
        try:
            async with asyncio.timeout(REVOKE_WAIT_SECONDS):
                async with self._deciding:
                    pass
        except TimeoutError:
            log.warning(
                "partitions %s revoked while a batch was still being decided after %.0f s",
                sorted(partitions),
                REVOKE_WAIT_SECONDS,
            )
        if self.snapshots is not None:
            await self.snapshots.flush(partitions, timeout=SNAPSHOT_FLUSH_SECONDS)
        self.states.forget(partitions)

    async def stopping(self) -> None:
        """The worker stops: write the snapshots and the queued outcomes (bounded in time)."""
        if self.snapshots is not None:
            await self.snapshots.flush(timeout=SNAPSHOT_FLUSH_SECONDS)
        if not await self.states.recovered(SNAPSHOT_FLUSH_SECONDS):
            log.warning("stopping with outcomes of restored partitions being recovered")
        if self.outcomes is not None and not await self.outcomes.drain(SNAPSHOT_FLUSH_SECONDS):
            log.warning("stopping with %d outcomes unrecorded", self.outcomes.queued)


def install_decider(
    app: faust.App,
    decider: Decider,
    *,
    commands_topic: str,
    partitions: int,
    registry: CollectorRegistry,
) -> None:
    """Add the decider's agent, its partition hand-over and the presence timer to a Faust app."""
    decided = Counter("chorus_commands_decided", "Commands decided", ["outcome"], registry=registry)
    left = Counter(
        "chorus_commands_left_to_next_owner",
        "Commands of a partition revoked before they were decided (read again by its next owner)",
        registry=registry,
    )
    deciding = Histogram(
        "chorus_decide_seconds",
        "From a command's arrival at the worker to its events acknowledged",
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
    waited = Histogram(
        "chorus_command_wait_seconds",
        "From a command's append (its record's timestamp) to its batch's decision starting: "
        "the fetch, the hand-over and the batch window",
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
    batches = Histogram(
        "chorus_decide_batch_commands",
        "Commands decided together (one poll's worth)",
        registry=registry,
        buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
    )
    topic = app.topic(
        commands_topic, key_serializer="raw", value_serializer="raw", partitions=partitions
    )

    @app.agent(topic, name="decide-commands")
    async def decide_commands(stream: Any) -> AsyncIterator[None]:
        # A batch's commands are acknowledged once the next batch is asked for: after this
        # one's events and outcomes are written.
        async for events in take_batches(stream, DECIDE_BATCH, DECIDE_WINDOW):
            started = time.perf_counter()
            now = time.time()
            for event in events:  # the record's timestamp: its producer's clock, in seconds
                waited.observe(max(0.0, now - event.message.timestamp))
            commands = [(e.message.partition, e.message.offset, e.value) for e in events]
            outcomes = await decider.decide_surely(commands)
            took = time.perf_counter() - started
            batches.observe(len(commands))
            for outcome in outcomes:
                if outcome == REVOKED:
                    left.inc()
                else:
                    deciding.observe(took)
                    decided.labels(outcome).inc()
            # Not acknowledged: the commands of partitions revoked meanwhile (their next owner
            # reads them again).
            events[:] = [e for e, o in zip(events, outcomes, strict=True) if o != REVOKED]
            yield None

    def ours(topic_partitions: Any) -> set[int]:
        return {tp.partition for tp in topic_partitions if tp.topic == commands_topic}

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await decider.revoked(ours(args[0] if args else ()))

    def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        decider.assigned(ours(args[0] if args else ()))

    async def on_stopping(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await decider.stopping()

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
    app.on_before_shutdown.connect(on_stopping)

    if decider.snapshots is not None:
        writer = decider.snapshots

        @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
        async def write_snapshots() -> None:
            writer.tick()

    timer = PresenceTimer(decider.states.loaded, decider.presence_ttl)

    @app.timer(interval=presence_timer_interval(decider.presence_ttl))  # type: ignore[untyped-decorator]
    async def expire_presence() -> None:
        await timer.tick(topic)
