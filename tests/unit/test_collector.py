"""A process's garbage collector: pauses measured, and the heap frozen after a full pass."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from adapters.collector import settle, settled_heap, watch_collections


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


def test_settling_freezes_what_survives_and_finds_cycles_among_what_it_froze(
    watched: CollectorRegistry,
) -> None:
    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first  # a cycle, alive while referenced here
    settle()
    assert gc.get_freeze_count() > 0
    # Frozen objects are out of the collector's generations.
    assert not any(isinstance(n, Node) for n in gc.get_objects())

    del first, second  # the cycle is garbage now, but frozen
    settle()  # unfreezes first: the cycle is found and freed

    gc.unfreeze()
    assert not any(isinstance(n, Node) for n in gc.get_objects())


async def test_a_services_heap_is_watched_while_it_runs_and_no_longer() -> None:
    registry, before = CollectorRegistry(), list(gc.callbacks)
    async with settled_heap(registry):
        assert len(gc.callbacks) == len(before) + 1
        gc.collect()
    assert gc.callbacks == before
    count = registry.get_sample_value("chorus_gc_pause_seconds_count", {"generation": "2"})
    assert count is not None and count >= 1
