"""Batches whose gathering window follows the load (streams/batching.py), on Faust's test agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest

from streams.batching import Window, take_batches


def test_the_window_grows_with_the_last_batch_up_to_the_longest() -> None:
    window = Window(shortest=0.001, longest=0.021, full_at=21)
    assert window.after(0) == pytest.approx(0.001)
    assert window.after(1) == pytest.approx(0.001)  # a lone record: nothing to wait for
    assert window.after(11) == pytest.approx(0.011)
    assert window.after(21) == pytest.approx(0.021)
    assert window.after(500) == pytest.approx(0.021)


async def test_batches_keep_the_order_and_hold_at_most_the_limit() -> None:
    app = faust.App("batching-test", store="memory://", autodiscover=False)
    batches: list[list[bytes]] = []

    @app.agent(app.topic("values", value_serializer="raw"))
    async def gather(stream: Any) -> AsyncIterator[None]:
        async for batch in take_batches(stream, 3, Window(0.001, 0.05, full_at=2)):
            batches.append([event.value for event in batch])
            yield None

    values = [str(i).encode() for i in range(8)]
    try:
        async with gather.test_context() as agent:
            await asyncio.gather(*(agent.put(value) for value in values))
            async with asyncio.timeout(10):
                while sum(map(len, batches)) < len(values):
                    await asyncio.sleep(0.01)  # waiting for the batches, not timing them
            await agent.put(b"alone")
            async with asyncio.timeout(10):
                while batches[-1] != [b"alone"]:
                    await asyncio.sleep(0.01)
    finally:
        # Faust builds its consumer's thread, with an event loop of its own, though none runs here.
        consumer: Any = app.consumer
        consumer._thread.thread_loop.close()

    assert [value for batch in batches for value in batch] == [*values, b"alone"]
    assert all(1 <= len(batch) <= 3 for batch in batches)
    assert max(map(len, batches)) == 3  # eight records put at once were batched, not one by one


async def test_events_the_consumer_removes_from_a_batch_are_not_acknowledged() -> None:
    app = faust.App("batching-acks-test", store="memory://", autodiscover=False)
    seen: list[Any] = []

    @app.agent(app.topic("values", value_serializer="raw"))
    async def gather(stream: Any) -> AsyncIterator[None]:
        async for batch in take_batches(stream, 10, Window(0.05, 0.05, full_at=2)):
            seen.extend(batch)
            batch[:] = [event for event in batch if event.value != b"left"]
            yield None

    try:
        async with gather.test_context() as agent:
            await asyncio.gather(*(agent.put(value) for value in (b"kept", b"left", b"also")))
            async with asyncio.timeout(10):
                while len(seen) < 3:
                    await asyncio.sleep(0.01)  # waiting for the batches, not timing them
                await agent.put(b"next")  # the first batch is acknowledged once this one is asked
                while not any(event.value == b"next" for event in seen):
                    await asyncio.sleep(0.01)
    finally:
        consumer: Any = app.consumer
        consumer._thread.thread_loop.close()

    acked = {event.value: event.message.acked for event in seen[:3]}
    assert acked == {b"kept": True, b"left": False, b"also": True}
