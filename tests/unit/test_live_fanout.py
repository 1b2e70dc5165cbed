"""A live client that cannot keep up is cut off (to resume), never buffered without bound."""

from __future__ import annotations

import asyncio

from queries.hub import ChangeRow, Subscriber
from schemas.sse import EventParser


def test_a_slow_client_overflows_once_and_is_told_to_end() -> None:
    subscriber = Subscriber("team", asyncio.Queue(maxsize=2))

    for seq in range(1, 6):
        subscriber.offer(ChangeRow(seq, "presence", {"user_id": "u"}))

    assert subscriber.overflowed
    assert subscriber.queue.qsize() == 1
    assert subscriber.queue.get_nowait() is None


def test_a_client_that_keeps_up_gets_every_change_in_order() -> None:
    subscriber = Subscriber("team", asyncio.Queue(maxsize=10))

    for seq in range(1, 6):
        subscriber.offer(ChangeRow(seq, "presence", {"user_id": "u"}))

    assert not subscriber.overflowed
    assert [subscriber.queue.get_nowait().seq for _ in range(5)] == [1, 2, 3, 4, 5]  # type: ignore[union-attr]


def test_a_change_frame_is_the_sse_event_a_client_parses() -> None:
    frame = ChangeRow(7, "call", {"call_id": "c", "state": "active"}).frame
    parser = EventParser()

    events = [event for line in frame.decode().split("\n") for event in parser.feed(line)]

    assert [(e.event, e.id, e.data) for e in events] == [
        ("call", "7", {"call_id": "c", "state": "active"})
    ]
