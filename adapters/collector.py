"""A process's garbage collector: its pauses on /metrics, a log line for a long one, and a
heap frozen once a minute so that the collector's passes walk only what is new.

Used by the worker and by every service (`web.service`): an event loop waits through each
collection, so its pauses are part of a command's way to its decision and of every request's
answer. In the worker at 1,000 heartbeats/s the oldest generation was walked whole every 2-4 s
(about 180,000 objects: Faust's and the clients' own, and the teams' states), 100-200 ms each,
freeing nothing; the commands service caches tokens and memberships by the ten thousand.
A `Settler` collects what is new since its last call and freezes what survives (`gc.freeze`):
later passes skip it. Every `SWEEP_EVERY`th call it unfreezes the heap first, so garbage
among the frozen objects (a reference cycle that died after it was frozen) is still found.
That full sweep is the long pause (150-370 ms in a busy worker, which freed next to nothing);
it comes once in ten minutes rather than every minute. Objects without cycles are freed by
their reference counts, frozen or not.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

log = logging.getLogger(__name__)

#: A pause this long is worth a log line.
LONG_PAUSE_SECONDS = 0.1
#: How often what is new is collected and frozen.
SETTLE_SECONDS = 60.0
#: Every this many settles the frozen objects are collected too.
SWEEP_EVERY = 10


class Settler:
    """Call it every SETTLE_SECONDS: it collects the objects not frozen yet and freezes what
    survives; every `sweep_every`th call (the first included) it collects the whole heap."""

    def __init__(self, sweep_every: int = SWEEP_EVERY) -> None:
        if sweep_every < 1:
            raise ValueError(f"sweep_every must be at least 1, not {sweep_every}")
        self.sweep_every = sweep_every
        self.calls = 0

    def __call__(self) -> None:
        if self.calls % self.sweep_every == 0:
            gc.unfreeze()
        self.calls += 1
        gc.collect()
        gc.freeze()


@asynccontextmanager
async def settled_heap(registry: CollectorRegistry) -> AsyncIterator[None]:
    """While in the block: collections timed into `registry`, and the heap settled every
    SETTLE_SECONDS (from the running event loop)."""
    forget = watch_collections(registry)
    settle = Settler()

    async def settling() -> None:
        while True:
            await asyncio.sleep(SETTLE_SECONDS)
            settle()

    task = asyncio.create_task(settling(), name="settle-heap")
    try:
        yield
    finally:
        task.cancel()
        forget()


def watch_collections(registry: CollectorRegistry) -> Callable[[], None]:
    """Time each collection of this process into `chorus_gc_pause_seconds`; returns what stops
    it."""
    pauses = Histogram(
        "chorus_gc_pause_seconds",
        "Garbage collector passes, by generation: the event loop waits through each",
        ["generation"],
        registry=registry,
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    # Resolved once: a young generation is collected many times a second.
    by_generation = [pauses.labels(str(generation)) for generation in range(3)]
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        by_generation[info["generation"]].observe(took)
        if took >= LONG_PAUSE_SECONDS:
            log.warning(
                "garbage collection of generation %d took %.0f ms (%d objects freed)",
                info["generation"],
                took * 1000,
                info["collected"],
            )

    gc.callbacks.append(timed)

    def forget() -> None:
        if timed in gc.callbacks:
            gc.callbacks.remove(timed)

    return forget
