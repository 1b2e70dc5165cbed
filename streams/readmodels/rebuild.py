"""`chorus rebuild`: the read models rebuilt from the events topic while the old ones serve.

1. Build shadow tables (`rm_*_next`) from every partition of the events topic, up to the end
   each partition had when the rebuild began, with the pure projection the live projector runs.
2. Catch up, outside any lock, with what arrived meanwhile, until little is left.
3. In one transaction: lock the live tables against writers (readers go on), catch up with the
   last events, and swap the shadow tables in. The projectors then find other tables (a new
   generation) and reload their views from them; the events they see next that the rebuild
   applied already are skipped by their stored position.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Connection, Engine

from config.settings import Settings
from db.engines import make_engine
from streams.events_reader import EventsReader
from streams.projection import Change, TeamView, project, record_key, without_settled_calls
from streams.readmodels.rebuild_tables import (
    create_shadow_tables,
    drop_shadow_tables,
    lock_live_tables,
    release_rebuild_lock,
    swap_in_shadow_tables,
    try_rebuild_lock,
)
from streams.readmodels.store import (
    NEXT,
    load_view,
    save,
    storable,
    trim_changes,
    write_changes,
    write_views,
)

log = logging.getLogger(__name__)
BATCH = 5_000  # change rows per insert while building
PROGRESS_STEP = 1_000
LOCKED_CATCH_UP_MAX = 1_000  # catch up unlocked until at most this many records remain
UNLOCKED_PASSES = 5


class RebuildError(RuntimeError):
    """The rebuild could not run (another one is running); the live tables are untouched."""


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild did."""

    events: int  # records read while building
    teams: int
    caught_up: int  # records applied after the build, the last of them under the lock
    seconds: float


def run_rebuild(settings: Settings) -> int:
    """The `chorus rebuild` command: rebuild, print a summary, return the exit code."""
    engine = make_engine(settings.require_database())
    try:
        result = rebuild_read_models(engine, settings.require_kafka(), settings.topics.events)
    except RebuildError as exc:
        print(f"chorus: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"chorus: read models rebuilt from {result.events} events of {result.teams} teams"
        f" in {result.seconds:.1f} s ({result.caught_up} more caught up while building)"
    )
    return 0


def rebuild_read_models(engine: Engine, bootstrap: str, topic: str) -> RebuildResult:
    """Rebuild every read model from the events topic and swap it in; see the module doc."""
    started = time.monotonic()
    with engine.connect() as session, EventsReader(bootstrap, topic) as reader:
        if not try_rebuild_lock(session):
            raise RebuildError("another rebuild is running")
        session.commit()
        try:
            with engine.begin() as conn:
                create_shadow_tables(conn)
            ends = {p: reader.watermarks(p) for p in reader.partitions()}
            events, teams = _build(engine, reader, ends)
            offsets = {p: high for p, (_, high) in ends.items()}
            caught_up = _catch_up_and_swap(engine, reader, offsets)
        except BaseException:
            with engine.begin() as conn:
                drop_shadow_tables(conn)
            raise
        finally:
            release_rebuild_lock(session)
            session.commit()
    return RebuildResult(events, teams, caught_up, time.monotonic() - started)


def _build(
    engine: Engine, reader: EventsReader, ends: dict[int, tuple[int, int]]
) -> tuple[int, int]:
    """Fill the shadow tables with every partition up to `ends`; (records read, teams)."""
    total = sum(high - low for low, high in ends.values())
    events = teams = 0
    # A bar on a terminal; nothing when piped or logged.
    with Progress(console=Console(stderr=True), disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("rebuilding read models", total=total)
        for partition, (low, high) in ends.items():
            read, built = _build_partition(
                engine, reader, partition, (low, high), lambda n: progress.advance(task, n)
            )
            events, teams = events + read, teams + built
    with engine.begin() as conn:
        trim_changes(conn, suffix=NEXT)
    return events, teams


def _build_partition(
    engine: Engine,
    reader: EventsReader,
    partition: int,
    offsets: tuple[int, int],
    advance: Callable[[int], None],
) -> tuple[int, int]:
    """One partition into the shadow tables: its changes in batches, then its teams' views."""
    views: dict[str, TeamView] = {}
    pending: list[tuple[str, Change]] = []
    count = 0
    for _, record in reader.read(partition, *offsets):
        count += 1
        if count % PROGRESS_STEP == 0:
            advance(PROGRESS_STEP)
        key = None if record is None else record_key(record)
        if record is None or key is None or not storable(key[0]):
            log.warning("partition %d: skipping an unusable record", partition)
            continue
        view = views.get(key[0]) or TeamView(team_id=key[0])
        views[key[0]], changes = project(view, record)
        pending += [(key[0], change) for change in changes]
        if len(pending) >= BATCH:
            _flush(engine, pending)
    _flush(engine, pending)
    advance(count % PROGRESS_STEP)
    with engine.begin() as conn:
        write_views(conn, views.values(), suffix=NEXT)
    log.info("partition %d: %d teams rebuilt from %d records", partition, len(views), count)
    return count, len(views)


def _flush(engine: Engine, pending: list[tuple[str, Change]]) -> None:
    if pending:
        with engine.begin() as conn:
            write_changes(conn, pending, suffix=NEXT)
        pending.clear()


def _catch_up_and_swap(engine: Engine, reader: EventsReader, offsets: dict[int, int]) -> int:
    """Apply what arrived since `offsets` to the shadow tables, and swap them in."""
    views: dict[str, TeamView] = {}
    applied = 0
    for _ in range(UNLOCKED_PASSES):
        if reader.behind(offsets) <= LOCKED_CATCH_UP_MAX:
            break
        with engine.begin() as conn:
            applied += _catch_up(conn, reader, offsets, views)
    with engine.begin() as conn:
        lock_live_tables(conn)
        applied += _catch_up(conn, reader, offsets, views)
        swap_in_shadow_tables(conn)
    return applied


def _catch_up(
    conn: Connection, reader: EventsReader, offsets: dict[int, int], views: dict[str, TeamView]
) -> int:
    """Apply the records after `offsets` to the shadow tables; moves `offsets` on."""
    applied = 0
    for partition, start in offsets.items():
        for offset, record in reader.read(partition, start):
            offsets[partition] = offset + 1
            key = None if record is None else record_key(record)
            if record is None or key is None or not storable(key[0]):
                continue
            view = views.get(key[0]) or load_view(conn, key[0], settled_calls=False, suffix=NEXT)
            after, changes = project(view, record)
            if after.seq > view.seq:
                # Nobody else writes the shadow tables, so the guard cannot refuse this.
                if not save(conn, view, after, changes, suffix=NEXT):
                    raise RuntimeError(f"shadow tables of team {key[0]} changed under the rebuild")
                applied += 1
            views[key[0]] = without_settled_calls(after)
    return applied
