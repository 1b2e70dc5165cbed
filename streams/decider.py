"""The decider agent: one writer per team partition turns commands into events, race-free.

Per command, in this order (NOTES.md, "Deciding without losing or doubling"):
1. decide against the team's state, which is the fold of the events already in the log;
2. write the events to the same partition of the events topic and await the broker's ack;
3. keep the new state in memory, record the outcome for the commands service;
4. let Faust commit the command's offset (after the agent has processed it).
A crash anywhere re-reads the command after a restart; the state is rebuilt from the log,
which already holds any events written before the crash, so the command is found decided
(its id is in the state) and is not decided twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine

from schemas.clock import format_time, parse_millis
from schemas.commands import Command, ExpirePresence
from schemas.mapper import MAPPER, MalformedEnvelope
from schemas.positions import command_position
from streams.domain import TeamState, apply_record, decide_and_seal
from streams.event_log import EventWriter
from streams.events_reader import EventsReader
from streams.outcomes import outcomes_of, record_outcomes

log = logging.getLogger(__name__)

PRESENCE_TIMER_ACTOR = "system:presence-timer"
# How far back a rebuilt partition re-records outcomes: far more than a worker has in flight.
OUTCOME_RECOVERY_EVENTS = 2000


class TeamStates:
    """The states of the teams of the partitions this worker owns, loaded from the log."""

    def __init__(self, bootstrap: str, events_topic: str, engine: Engine | None = None) -> None:
        self._bootstrap = bootstrap
        self._topic = events_topic
        self._engine = engine
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
        count = 0
        with EventsReader(self._bootstrap, self._topic) as reader:
            records = [record for _, record in reader.read(partition, 0) if record is not None]
        for record in records:
            team_id = str(record["team_id"])
            before = teams.get(team_id, TeamState())
            teams[team_id] = apply_record(before, record)
            if teams[team_id].seq != before.seq:  # a repeated (team_id, seq) is skipped
                tail.append(record)
            count += 1
        log.info("partition %d: %d teams rebuilt from %d events", partition, len(teams), count)
        recent = list(tail)
        if len(recent) == OUTCOME_RECOVERY_EVENTS:  # the oldest command may be cut in two
            recent = [r for r in recent if r["causation_id"] != recent[0]["causation_id"]]
        if self._engine is not None and recent:
            # A worker that died after writing events but before recording their outcome left
            # those commands pending; their decision is in the log, so record it now.
            record_outcomes(self._engine, outcomes_of(recent))
        return teams


def install_decider(
    app: faust.App,
    *,
    bootstrap: str,
    commands_topic: str,
    events_topic: str,
    partitions: int,
    presence_ttl: float,
    engine: Engine | None,
    registry: CollectorRegistry,
) -> TeamStates:
    """Add the decider agent and the presence timer to a Faust app."""
    states = TeamStates(bootstrap, events_topic, engine)
    decided = Counter("chorus_commands_decided", "Commands decided", ["outcome"], registry=registry)
    deciding = Histogram(
        "chorus_decide_seconds",
        "From a command's arrival at the worker to its events acknowledged",
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
    writer: dict[str, EventWriter] = {}
    topic = app.topic(
        commands_topic, key_serializer="raw", value_serializer="raw", partitions=partitions
    )

    def event_writer() -> EventWriter:
        if "writer" not in writer:
            writer["writer"] = EventWriter(bootstrap, events_topic)
        return writer["writer"]

    @app.agent(topic, name="decide-commands")
    async def decide_commands(stream: Any) -> AsyncIterator[None]:
        async for event in stream.events():
            started = time.perf_counter()
            message = event.message
            outcome = await _decide_one(message.partition, message.offset, event.value)
            deciding.observe(time.perf_counter() - started)
            decided.labels(outcome).inc()
            yield None

    async def _decide_one(partition: int, offset: int, raw: bytes) -> str:
        try:
            envelope = MAPPER.decode_command_envelope(raw)
        except MalformedEnvelope as exc:
            log.error("skipping a command with a broken envelope: %s", exc)
            return "malformed"
        state = await states.team(partition, envelope.team_id)
        records, after = decide_and_seal(state, raw, presence_ttl=presence_ttl)
        if records:
            await event_writer().write(partition, records)
        states.put(partition, envelope.team_id, after)
        if records and engine is not None:
            rows = outcomes_of(records, command_position(partition, offset))
            await asyncio.to_thread(record_outcomes, engine, rows)
        if not records:
            return "no_events"
        return "rejected" if records[0]["type"] == "command.rejected" else "accepted"

    def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else ()
        states.forget({tp.partition for tp in revoked if tp.topic == commands_topic})

    def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        assigned = args[0] if args else ()
        states.preload({tp.partition for tp in assigned if tp.topic == commands_topic})

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)

    @app.timer(interval=max(1.0, presence_ttl / 3))  # type: ignore[untyped-decorator]
    async def expire_presence() -> None:
        await _expire_presence(app, topic, states, presence_ttl)

    return states


async def _expire_presence(
    app: faust.App, topic: Any, states: TeamStates, presence_ttl: float
) -> None:
    """Append a `presence.expire` command for each team with a device past its TTL."""
    now = datetime.now(UTC)
    now_ms = parse_millis(format_time(now))
    ttl_ms = int(presence_ttl * 1000)
    for teams in list(states.loaded().values()):
        for team_id, state in list(teams.items()):
            if not _has_expired_device(state, now_ms, ttl_ms):
                continue
            command = Command(
                command_id=_timer_command_id(team_id, now_ms),
                team_id=team_id,
                actor=PRESENCE_TIMER_ACTOR,
                received_at=format_time(now),
                data=ExpirePresence(ttl_seconds=presence_ttl),
            )
            await topic.send(key=team_id.encode(), value=MAPPER.command_to_bytes(command))


def _has_expired_device(state: TeamState, now_ms: int, ttl_ms: int) -> bool:
    for user in state.presence.values():
        for device in user.devices.values():
            if device.effective != "offline" and device.last_seen_ms + ttl_ms < now_ms:
                return True
    return False


def _timer_command_id(team_id: str, now_ms: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chorus:presence-expire/{team_id}/{now_ms}"))
