"""`replay state` with its partitions read by two processes, on a real broker.

A log of scripted team days is produced straight to the topic (no worker), then folded with
the plan split between this process and a helper process: the views are the plain fold's.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench.replay import generate, produce
from replay import parallel
from replay.bounds import Bounds
from replay.parallel import Helper
from replay.reading import LogReader
from replay.state import all_states, state_at
from schemas.clock import parse_millis
from schemas.topics import Topics
from streams.projection import fold_views


@pytest.fixture
def log(kafka_bootstrap: str, topics: Topics) -> list[dict[str, Any]]:
    rows = generate(teams=12, events_per_team=150, workers=1)
    produce(kafka_bootstrap, topics.events, rows)
    return [orjson.loads(value) for _, _, value in rows]


def helpers(monkeypatch: pytest.MonkeyPatch) -> list[Helper[Any]]:
    """Splits every plan (whatever the machine's cores); the helpers started, for checking."""
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    monkeypatch.setattr(parallel, "MIN_RECORDS", 1)
    started: list[Helper[Any]] = []
    start = Helper.start.__func__  # type: ignore[attr-defined]

    def spy(cls: type[Helper[Any]], *args: Any) -> Helper[Any]:
        started.append(start(cls, *args))
        return started[-1]

    monkeypatch.setattr(Helper, "start", classmethod(spy))
    return started


@pytest.mark.parametrize("at", ["2026-11-23T08:30:00.000Z", "2026-11-24T00:00:00.000Z"])
def test_a_state_read_by_two_processes_is_the_fold_of_the_log(
    kafka_bootstrap: str,
    topics: Topics,
    log: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    at: str,
) -> None:
    started = helpers(monkeypatch)
    warnings: list[str] = []
    reader = LogReader(kafka_bootstrap, topics.events)
    try:
        views = state_at(reader, Bounds(until_ms=parse_millis(at)), warnings.append)
    finally:
        reader.close()
    assert len(started) == 1 and started[0].process.returncode == 0
    expected = fold_views(record for record in log if record["occurred_at"] <= at)
    assert all_states(views) == all_states(expected)
    assert views == expected and not warnings
