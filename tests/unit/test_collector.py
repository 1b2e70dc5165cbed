"""A process's garbage collector: pauses measured, and the heap frozen after a full pass."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from adapters.collector import Settler, settled_heap, watch_collections


@pytest.fixture
def watched() -> Iterator[CollectorRegistry]:
    registry = CollectorRegistry()
    before = list(gc.callbacks)
    watch_collections(registry)
    yield registry
    gc.callbacks[:] = before
    gc.unfreeze()


def test_each_collection_is_timed_by_generation(watched: CollectorRegistry) -> None:
    gc.collect()

    count = watched.get_sample_value("chorus_gc_pause_seconds_count", {"generation": "2"})
    assert count is not None and count >= 1


def test_settling_freezes_what_survives_and_sweeps_the_frozen_now_and_then(
    watched: CollectorRegistry,
) -> None:
    class Node:
        other: object = None

    def nodes() -> int:
        return sum(isinstance(n, Node) for n in gc.get_objects())

    settle = Settler(sweep_every=3)
    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle, alive while referenced here
    settle()
    assert gc.get_freeze_count() > 0
    assert nodes() == 0  # frozen objects are out of the collector's generations

    del first, second  # the cycle is garbage now, but frozen
    settle()
    settle()  # the frozen objects stay out of these passes: the cycle is not found
    gc.disable()  # no automatic pass while they are out of the permanent generation
    try:
        gc.unfreeze()
        assert nodes() == 2
        gc.freeze()
    finally:
        gc.enable()

    settle()  # the third after the first: a sweep, frozen objects included
    gc.unfreeze()
    assert nodes() == 0


def test_a_settler_sweeps_at_least_every_call() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Settler(sweep_every=0)


async def test_a_services_heap_is_watched_while_it_runs_and_no_longer() -> None:
    registry, before = CollectorRegistry(), list(gc.callbacks)
    async with settled_heap(registry):
        assert len(gc.callbacks) == len(before) + 1
        gc.collect()
    assert gc.callbacks == before
    count = registry.get_sample_value("chorus_gc_pause_seconds_count", {"generation": "2"})
    assert count is not None and count >= 1
