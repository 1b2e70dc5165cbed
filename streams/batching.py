"""Batches of a Faust stream whose gathering window follows the load.

Faust's `take_events` gathers for a fixed window each time, so a lone change waits up to the
whole window, the price of the large batches that keep a busy partition up to date. Here the
window is chosen per batch from the size of the last one: a quiet stream waits only the shortest
window after its first record, and a busy one (whose batches fill) the longest. A batch's events
are acknowledged only once the next batch is asked for, so a worker that dies while handling a
batch leaves all of it to be read again; the events its consumer removed from the batch (list)
it was given are not acknowledged at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Window:
    """How long a batch gathers records after its first one, in seconds."""

    shortest: float
    longest: float
    full_at: int  # the last batch's size from which the longest window is used

    def __post_init__(self) -> None:
        if not (0 <= self.shortest <= self.longest and self.full_at > 1):
            raise ValueError(f"not a window: {self}")

    def after(self, last_size: int) -> float:
        """The window for the batch after one of `last_size` records: the shortest after a
        lone record (nothing was gathered with it), growing to the longest at `full_at`."""
        share = min(1.0, max(0, last_size - 1) / (self.full_at - 1))
        return self.shortest + (self.longest - self.shortest) * share


async def take_batches(stream: Any, most: int, window: Window) -> AsyncIterator[list[Any]]:
    """Yield lists of up to `most` Faust events from `stream` (an agent's stream), each gathered
    for `window.after(size of the batch before)` once its first record came."""
    buffer: list[Any] = []
    first = asyncio.Event()  # the buffer holds a record
    full = asyncio.Event()  # the buffer holds `most` records
    room = asyncio.Event()  # records may be added (cleared while a batch is handled or full)
    room.set()

    async def gather(value: Any) -> Any:
        # Runs inside the stream's iteration, one record at a time: a record waits here while
        # the batch before it is handled, so it is never taken (or acknowledged) without it.
        while not room.is_set():
            await stream.wait(room)
            if stream.should_stop:
                return value
        event = stream.current_event
        if event is None:
            raise RuntimeError("a stream record came without its event")
        buffer.append(event)
        first.set()
        if len(buffer) >= most:
            full.set()
            room.clear()
        return value

    acks_were = stream.enable_acks
    stream.enable_acks = False  # each event is acknowledged below, once its batch is handled
    stream.add_processor(gather)
    stream._enable_passive(aiter(stream.channel))
    last_size = 0
    try:
        while not stream.should_stop:
            if not buffer:
                await stream.wait(first)
            # (mode's wait says "stopped" on a timeout too: should_stop is the one to ask)
            await stream.wait(full, timeout=window.after(last_size))
            if stream.should_stop:
                break
            if not buffer:  # woken by the stream stopping
                continue
            room.clear()
            batch = list(buffer)
            buffer.clear()
            first.clear()
            full.clear()
            yield batch
            # Not on an exception (unhandled records are read again), and only those the
            # consumer left in the batch.
            for event in batch:
                await stream.ack(event)
            last_size = len(batch)
            room.set()
    finally:
        stream.enable_acks = acks_were
        stream._processors.remove(gather)
