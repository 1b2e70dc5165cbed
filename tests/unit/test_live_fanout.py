"""A live client that cannot keep up is cut off (to resume), never buffered without bound; one
that keeps up is written to at once."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from queries.hub import ChangeRow, Subscriber
from queries.stream import SseWriter
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


class Connection:
    """An ASGI send whose transport can be paused: a write then waits until it resumes."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.bodies: list[bytes] = []

    async def send(self, message: Message) -> None:
        await self.writable.wait()
        self.bodies.append(message["body"])


async def test_a_stream_that_keeps_up_is_written_at_once_without_a_task() -> None:
    connection = Connection()
    writer = SseWriter(connection.send, sent=0, backlog_limit=2)
    tasks = len(asyncio.all_tasks())

    writer.changes([ChangeRow(1, "presence", {}), ChangeRow(2, "call", {})], b"one+two")
    writer.changes([ChangeRow(2, "call", {})])  # already written: skipped
    writer.changes([ChangeRow(3, "presence", {"n": 3})])

    assert connection.bodies == [b"one+two", ChangeRow(3, "presence", {"n": 3}).frame]
    assert len(asyncio.all_tasks()) == tasks and writer.ended is None


async def test_a_paused_stream_gets_its_backlog_in_order_once_it_drains() -> None:
    connection = Connection()
    writer = SseWriter(connection.send, sent=0, backlog_limit=2)
    connection.writable.clear()

    for body in (b"a", b"b", b"c"):
        writer.write(body)
    assert connection.bodies == []
    connection.writable.set()
    while len(connection.bodies) < 3:
        await asyncio.sleep(0)

    assert connection.bodies == [b"a", b"b", b"c"]
    assert writer.ended is None
    writer.write(b"d")  # written at once again
    assert connection.bodies[-1] == b"d"


async def test_a_paused_stream_past_its_backlog_is_cut_off() -> None:
    connection = Connection()
    writer = SseWriter(connection.send, sent=0, backlog_limit=2)
    connection.writable.clear()

    for body in (b"a", b"b", b"c", b"d"):
        writer.write(body)

    assert writer.ended is True  # overflowed: it resumes
    await writer.close()
    assert connection.bodies == []


class Recording:
    """An ASGI send that records whole messages, pausable like `Connection`."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        await self.writable.wait()
        self.messages.append(message)


async def test_a_stream_cut_off_ends_its_response_at_once_and_writes_nothing_after() -> None:
    connection = Recording()
    writer = SseWriter(connection.send, sent=0, backlog_limit=2)
    writer.write(b"a")

    writer.end()
    writer.end()  # twice is harmless
    writer.write(b"b")

    assert [(m["body"], m["more_body"]) for m in connection.messages] == [
        (b"a", True),
        (b"", False),  # the response is complete: the server tells the app `http.disconnect`
    ]


async def test_a_stream_cut_off_while_blocked_ends_after_the_write_under_way() -> None:
    connection = Recording()
    writer = SseWriter(connection.send, sent=0, backlog_limit=5)
    connection.writable.clear()
    writer.write(b"a")  # blocked
    writer.write(b"b")  # backlog, dropped by the cut

    writer.end()
    connection.writable.set()
    while len(connection.messages) < 2:
        await asyncio.sleep(0)

    assert [(m["body"], m["more_body"]) for m in connection.messages] == [
        (b"a", True),
        (b"", False),
    ]
    await writer.close()
