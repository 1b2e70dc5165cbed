"""The projector agent: the events topic into the PostgreSQL read models, exactly once in effect.

Per batch of event records (gathered by `take_batches`, up to `PROJECT_BATCH`), in partition order:
1. project each onto its team's view, kept in memory (loaded from PostgreSQL on first use);
2. write what each team's records changed (rows, changes, the new position) in one transaction
   for the whole batch, each team's step guarded by its stored position (`store.save_many`);
   (an event whose changes the tables refuse is quarantined: that batch goes record by record,
   the position moves and the record is kept in the `quarantine` table, in one transaction);
3. let Faust commit the offsets, which it does only after the agent asked for the next batch, so
   always after the write committed.
A crash between 2 and 3 re-reads records whose seq is stored already: they are skipped. A guard
that finds another position (another worker wrote during a rebalance) or other tables (`chorus
rebuild` swapped them) reloads the view from the tables and projects again. A database that is
down is waited for: skipping an event would lose it from the read models for good.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
from msgspec.structs import replace
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from db.tables import quarantine
from schemas.envelope import record_or_none
from schemas.text import storable as storable_text
from streams.batching import Window, take_batches
from streams.projection import Change, TeamView, project, record_key, without_settled_calls
from streams.readmodels.store import load_view, save, save_many, storable, table_generation

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_MAX_SECONDS = 5.0
# Records projected together at most, and how long a batch gathers them after its first one:
# the window is added to each change's way to the live streams, so it is short while records
# come one at a time and longer once batches fill (streams/batching.py).
PROJECT_BATCH = 500
PROJECT_WINDOW = Window(shortest=0.001, longest=0.01, full_at=20)


@dataclass
class _Step:
    """A team's records of one batch, projected: from `before` (as stored) to `after`."""

    partition: int
    before: TeamView
    after: TeamView
    changes: list[Change] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)  # of the records applied, in the batch


class Projector:
    """Views of the teams of the events partitions this worker owns, and how they are written."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._views: dict[int, dict[str, TeamView]] = {}
        self._generation: int | None = None  # of the tables the cached views were loaded from

    async def apply(self, partition: int, raw: bytes) -> str:
        """Project one record of `partition` into the tables; returns what became of it."""
        record = record_or_none(raw)
        key = None if record is None else record_key(record)
        if record is None or key is None or not storable(key[0]):
            log.error("read models: skipping an unusable record at partition %d", partition)
            return "malformed"
        team_id, seq = key
        view = self._views.get(partition, {}).get(team_id)
        if view is None:
            view = await self._reload(partition, team_id)
        while seq > view.seq:
            after, changes = project(view, record)
            outcome = "applied"
            written = await self._write(view, after, changes)
            if isinstance(written, str):
                # The tables refuse what the event changes: keep it aside (`chorus replay
                # verify` names it) and move the position, so the team's next events still
                # project.
                after, outcome = replace(view, seq=seq), "quarantined"
                kept = _quarantined(record, raw, team_id, seq, written)
                written = await self._write(view, after, [], kept)
                if isinstance(written, str):
                    return "failed"
            if written:
                self._views.setdefault(partition, {})[team_id] = without_settled_calls(after)
                return outcome
            view = await self._reload(partition, team_id)  # stored elsewhere, or stale
        return "skipped"

    async def apply_many(self, records: Sequence[tuple[int, bytes]]) -> list[str]:
        """Project `(partition, raw)` records in log order; what became of each.

        Each team's records make one step, and every team's step is written in one transaction
        (`save_many`): a batch.s worth of events costs one commit, not one each. A team whose
        step the guard refuses goes on record by record (`apply`, which reloads its view), and
        so does the whole batch when the tables refuse something in it (`apply` sets aside only
        the record refused): nothing was written of it.
        """
        outcomes = ["skipped"] * len(records)
        steps: dict[tuple[int, str], _Step] = {}
        for index, (partition, raw) in enumerate(records):
            record = record_or_none(raw)
            key = None if record is None else record_key(record)
            if record is None or key is None or not storable(key[0]):
                log.error("read models: skipping an unusable record at partition %d", partition)
                outcomes[index] = "malformed"
                continue
            step = steps.get((partition, key[0]))
            if step is None:
                view = self._views.get(partition, {}).get(key[0])
                if view is None:
                    view = await self._reload(partition, key[0])
                step = steps[(partition, key[0])] = _Step(partition, view, view)
            if key[1] > step.after.seq:
                step.after, changes = project(step.after, record)
                step.changes += changes
                step.indexes.append(index)
                outcomes[index] = "applied"
        moving = [step for step in steps.values() if step.indexes]
        if not moving:
            return outcomes
        try:
            written = await _patiently(lambda: asyncio.to_thread(self._save_steps, moving))
        except DBAPIError:  # data the tables cannot hold, somewhere in the batch
            return [await self.apply(partition, raw) for partition, raw in records]
        for step, saved in zip(moving, written, strict=True):
            if saved:
                self._views.setdefault(step.partition, {})[step.after.team_id] = (
                    without_settled_calls(step.after)
                )
                continue
            self._views.get(step.partition, {}).pop(step.after.team_id, None)
            for index in step.indexes:
                outcomes[index] = await self.apply(*records[index])
        return outcomes

    def _save_steps(self, steps: list[_Step]) -> list[bool]:
        with self._engine.begin() as conn:
            return save_many(
                conn,
                [(step.before, step.after, step.changes) for step in steps],
                generation=self._generation,
            )

    def forget(self, partitions: set[int]) -> None:
        """Drop views of partitions another worker may now own (reloaded if they come back)."""
        for partition in partitions:
            self._views.pop(partition, None)

    async def _reload(self, partition: int, team_id: str) -> TeamView:
        generation, view = await _patiently(lambda: asyncio.to_thread(self._load, team_id))
        if generation != self._generation:
            # New tables (a rebuild): every view in memory may differ from them.
            self._views.clear()
            self._generation = generation
        self._views.setdefault(partition, {})[team_id] = view
        return view

    def _load(self, team_id: str) -> tuple[int, TeamView]:
        with self._engine.begin() as conn:
            # The generation first: a swap in between then only costs one more reload.
            generation = table_generation(conn)
            return generation, load_view(conn, team_id, settled_calls=False)

    async def _write(
        self,
        before: TeamView,
        after: TeamView,
        changes: list[Change],
        kept: dict[str, Any] | None = None,
    ) -> bool | str:
        """True if written, False if the guard refused it, the reason if the database refused it.

        `kept` (a quarantine row) is inserted in the same transaction, if the step is written.
        """
        try:
            return await _patiently(
                lambda: asyncio.to_thread(self._save, before, after, changes, kept)
            )
        except DBAPIError as exc:  # data the tables cannot hold: nothing to retry
            log.error("read models: %s seq %d not stored: %s", after.team_id, after.seq, exc)
            return _reason(exc)

    def _save(
        self,
        before: TeamView,
        after: TeamView,
        changes: list[Change],
        kept: dict[str, Any] | None,
    ) -> bool:
        with self._engine.begin() as conn:
            written = save(conn, before, after, changes, generation=self._generation)
            if written and kept is not None:
                _keep(conn, kept)
            return written


def _reason(exc: DBAPIError) -> str:
    """The database's own message (its first line), storable as text."""
    message = str(exc.orig) if exc.orig is not None else str(exc)
    return str(storable_text(message.strip().splitlines()[0] if message.strip() else "refused"))


def _quarantined(
    record: dict[str, Any], raw: bytes, team_id: str, seq: int, reason: str
) -> dict[str, Any]:
    """The quarantine row of a record the read-model tables refused."""
    event_id, kind = record.get("event_id"), record.get("type")
    log.error("read models: quarantined %s seq %d (%s): %s", team_id, seq, kind, reason)
    return {
        "team_id": team_id,
        "seq": seq,
        "event_id": storable_text(event_id) if isinstance(event_id, str) else None,
        "type": storable_text(kind) if isinstance(kind, str) else None,
        "reason": reason,
        "record": raw,
    }


def _keep(conn: Connection, row: dict[str, Any]) -> None:
    # Kept once: a record set aside again (after a rebuild moved the position back) is the same.
    conn.execute(insert(quarantine).values(**row).on_conflict_do_nothing())


async def _patiently(attempt: Callable[[], Awaitable[T]]) -> T:
    """The result of `attempt`, retried with back-off while the database is unreachable."""
    delay = 0.1
    while True:
        try:
            return await attempt()
        except DBAPIError as exc:
            if not _unreachable(exc):
                raise
            log.warning("read models: database unavailable, retrying in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)


def _unreachable(exc: DBAPIError) -> bool:
    """True for a lost or refused connection (worth waiting for), not for refused data."""
    return isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated


def install_projector(
    app: faust.App,
    *,
    events_topic: str,
    partitions: int,
    engine: Engine,
    registry: CollectorRegistry | None = None,
) -> Projector:
    """Add the projector agent (events topic -> read-model tables) to a Faust app."""
    projector = Projector(engine)
    registry = registry if registry is not None else CollectorRegistry()
    projected = Counter(
        "chorus_events_projected", "Event records projected", ["outcome"], registry=registry
    )
    projecting = Histogram(
        "chorus_project_seconds",
        "From an event's arrival at the projector to its read models committed",
        registry=registry,
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    )
    topic = app.topic(
        events_topic, key_serializer="raw", value_serializer="raw", partitions=partitions
    )

    @app.agent(topic, name="project-events")
    async def project_events(stream: Any) -> AsyncIterator[None]:
        # A batch's records are acknowledged once the next batch is asked for: after they are
        # written.
        async for events in take_batches(stream, PROJECT_BATCH, PROJECT_WINDOW):
            started = time.perf_counter()
            outcomes = await projector.apply_many([(e.message.partition, e.value) for e in events])
            took = time.perf_counter() - started
            for outcome in outcomes:
                projecting.observe(took)
                projected.labels(outcome).inc()
            yield None

    def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        revoked = args[0] if args else ()
        projector.forget({tp.partition for tp in revoked if tp.topic == events_topic})

    app.on_partitions_revoked.connect(on_revoked)
    return projector
