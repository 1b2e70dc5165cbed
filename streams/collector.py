"""The worker's garbage collector: its pauses on /metrics, and a log line for a long one.

A worker holds every loaded team's state: a full collection walks all of it while the event
loop waits, so its pauses are part of a command's way to its decision.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

log = logging.getLogger(__name__)

#: A pause this long is worth a log line.
LONG_PAUSE_SECONDS = 0.1


def watch_collections(registry: CollectorRegistry) -> None:
    """Time each collection of this process into `chorus_gc_pause_seconds`."""
    pauses = Histogram(
        "chorus_gc_pause_seconds",
        "Garbage collector passes, by generation: the worker's event loop waits through each",
        ["generation"],
        registry=registry,
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took = time.perf_counter() - started[0]
        pauses.labels(str(info["generation"])).observe(took)
        if took >= LONG_PAUSE_SECONDS:
            log.warning(
                "garbage collection of generation %d took %.0f ms (%d objects freed)",
                info["generation"],
                took * 1000,
                info["collected"],
            )

    gc.callbacks.append(timed)
