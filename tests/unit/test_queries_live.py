"""Live queries: a snapshot or the resumed changes, then each change once, as SSE with ids."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Message

from auth.cache import VerifiedTokens, membership_cache
from auth.revocations import Revocations
from config.settings import Settings
from queries import live
from queries.callers import LiveCallers
from queries.hub import ChangeHub, ChangeRow, Subscriber
from queries.state import QueriesState
from schemas.sse import KEEPALIVE, EventParser, ServerEvent
from tests.fakedb import ScriptedEngine, row
from tests.memoryhub import InMemoryHub

TEAM = "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d"


def _events(chunks: list[bytes]) -> list[ServerEvent]:
    parser = EventParser()
    return [event for line in b"".join(chunks).decode().split("\n") for event in parser.feed(line)]


class FakeClient:
    """The ASGI side of one connection: what the stream sent, and a way to leave."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.gone = asyncio.Event()

    async def send(self, message: Message) -> None:
        self.sent.append(message.get("body", b""))
        if not message.get("more_body", False):
            self.gone.set()  # as a server does: a complete response means `http.disconnect`

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}


async def _run(
    request: Request,
    hub: ChangeHub,
    subscriber: Subscriber,
    resume: int | None,
    client: FakeClient | None = None,
) -> tuple[bool, list[bytes]]:
    """Run a stream until it ends: (cut off, what it sent)."""
    client = client or FakeClient()
    stream = live._stream(request, hub, subscriber, resume, client.send, client.receive)
    cut_off = await asyncio.wait_for(stream, 2.0)
    return cut_off, client.sent


def _request(tmp_path: Path, engine: ScriptedEngine | None = None) -> Request:
    app = Starlette()
    app.state.service = QueriesState(
        settings=Settings(data_dir=tmp_path, secret="s"),
        tokens=VerifiedTokens(lambda: "s"),
        engine=(engine or ScriptedEngine()).typed(),
        hub=cast(ChangeHub, None),
        callers=LiveCallers(Revocations()),
        members=membership_cache(),
    )
    return Request({"type": "http", "headers": [], "app": app})


async def _team_at(seq: int) -> tuple[InMemoryHub, Subscriber]:
    hub = InMemoryHub()
    hub.commit(TEAM, *["presence"] * seq)
    return hub, await hub.subscribe(TEAM)


@pytest.mark.parametrize(
    ("header", "resume"),
    [("42", 42), (" 7 ", 7), ("0", 0), ("9" * 18, int("9" * 18))],
)
def test_a_last_event_id_chorus_gave_is_resumed_from(header: str, resume: int) -> None:
    request = Request({"type": "http", "headers": [(b"last-event-id", header.encode())]})

    assert live._last_event_id(request) == resume


# Headers arrive as latin-1: superscript digits are digits to str.isdigit, not to int().
@pytest.mark.parametrize("header", [None, "", "-1", "4.2", "abc", "\u00b2\u00b3", "9" * 19])
def test_any_other_last_event_id_means_start_afresh(header: str | None) -> None:
    headers = [] if header is None else [(b"last-event-id", header.encode("latin-1"))]

    assert live._last_event_id(Request({"type": "http", "headers": headers})) is None


async def test_a_resumed_stream_sends_the_missed_changes_then_new_ones_each_once(
    tmp_path: Path,
) -> None:
    hub, subscriber = await _team_at(5)
    # Changes the hub queued while the opening was read: 4 and 5 are in both.
    for seq in (4, 5, 6):
        subscriber.offer(ChangeRow(seq, "call", {"n": seq}))
    subscriber.queue.put_nowait(None)

    cut_off, chunks = await _run(_request(tmp_path), hub, subscriber, 2)

    assert cut_off
    assert [(e.id, e.event) for e in _events(chunks)] == [
        ("3", "presence"),
        ("4", "presence"),
        ("5", "presence"),
        ("6", "call"),
    ]
    assert hub.clients() == 0  # the ended stream left the hub


@pytest.mark.parametrize("resume", [None, 9, 20_000])
async def test_a_stream_with_nothing_to_resume_opens_with_a_snapshot(
    tmp_path: Path, resume: int | None
) -> None:
    hub, subscriber = await _team_at(5)
    engine = ScriptedEngine(
        [row(seq=5)],
        [row(body={"user_id": "u1", "status": "available"})],
        [row(body={"call_id": "c1", "state": "active"})],
    )
    subscriber.offer(ChangeRow(5, "presence", {"n": 5}))  # in the snapshot already
    subscriber.offer(ChangeRow(6, "call", {"n": 6}))
    subscriber.queue.put_nowait(None)

    _, chunks = await _run(_request(tmp_path, engine), hub, subscriber, resume)

    snapshot, change = _events(chunks)
    assert (snapshot.event, snapshot.id, change.event, change.id) == ("snapshot", "5", "call", "6")
    assert snapshot.data == {
        "presence": {"position": "5", "members": [{"user_id": "u1", "status": "available"}]},
        "calls": [{"call_id": "c1", "state": "active"}],
    }
    assert engine.options == {"isolation_level": "REPEATABLE READ"}  # one instant of the team


async def test_a_resume_from_before_the_kept_changes_gets_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub, subscriber = await _team_at(11_000)  # changes at or below 1 000 are forgotten
    snapshots: list[str] = []

    async def snapshot(request: Request, team_id: str) -> tuple[int, list[bytes]]:
        snapshots.append(team_id)
        return 11_000, [b"event: snapshot\nid: 11000\ndata: {}\n\n"]

    monkeypatch.setattr(live, "_snapshot", snapshot)
    subscriber.queue.put_nowait(None)

    _, opened = await _run(_request(tmp_path), hub, subscriber, 999)
    assert snapshots == [TEAM]
    assert [e.id for e in _events(opened)] == ["11000"]

    subscriber = await hub.subscribe(TEAM)
    subscriber.queue.put_nowait(None)
    _, resumed = await _run(_request(tmp_path), hub, subscriber, 1_000)
    assert snapshots == [TEAM]  # from 1 000 on everything is kept: resumed, no snapshot
    assert [e.id for e in _events(resumed)][:2] == ["1001", "1002"]


async def test_quiet_streams_get_a_keepalive_comment_from_the_hub(tmp_path: Path) -> None:
    hub, quiet = await _team_at(3)
    busy = await hub.subscribe(TEAM)
    hub.keepalive = 10.0
    clients = FakeClient(), FakeClient()
    running = [
        asyncio.create_task(_run(_request(tmp_path), hub, s, 3, client=c))
        for s, c in zip((quiet, busy), clients, strict=True)
    ]
    while quiet.writer is None or busy.writer is None:
        await asyncio.sleep(0)
    quiet.writer.last_write -= 5.0  # quiet for half the period

    hub.keep_alive()

    assert clients[0].sent == [KEEPALIVE] and clients[1].sent == []
    for client in clients:
        client.gone.set()
    assert [(await task)[0] for task in running] == [False, False]  # they left
    assert hub.clients() == 0


async def test_a_client_resuming_from_the_hubs_position_needs_no_read(tmp_path: Path) -> None:
    hub, subscriber = await _team_at(4)
    while hub._fetching:  # the hub's catch-up read after the subscription
        await asyncio.sleep(0)
    reads = hub.reads
    client = FakeClient()
    running = asyncio.create_task(_run(_request(tmp_path), hub, subscriber, 4, client=client))
    while subscriber.writer is None:
        await asyncio.sleep(0)
    assert hub.reads == reads  # nothing read for the opening

    hub.commit(TEAM, "call")
    while not client.sent:
        await asyncio.sleep(0.01)
    client.gone.set()

    assert not (await running)[0]
    assert [e.id for e in _events(client.sent)] == ["5"]


async def test_changes_after_the_opening_are_written_by_the_hub_each_once(tmp_path: Path) -> None:
    hub, subscriber = await _team_at(2)
    client = FakeClient()
    running = asyncio.create_task(_run(_request(tmp_path), hub, subscriber, 2, client=client))
    while subscriber.writer is None:
        await asyncio.sleep(0)

    hub.commit(TEAM, "presence", "call")
    while len(_events(client.sent)) < 2:
        await asyncio.sleep(0.01)
    hub.commit(TEAM, "presence")
    while len(_events(client.sent)) < 3:
        await asyncio.sleep(0.01)
    client.gone.set()

    assert not (await running)[0]
    assert [(e.id, e.event) for e in _events(client.sent)] == [
        ("3", "presence"),
        ("4", "call"),
        ("5", "presence"),
    ]
    assert hub.clients() == 0


async def test_open_streams_wait_in_their_own_coroutine_with_no_task_besides(
    tmp_path: Path,
) -> None:
    hub, first = await _team_at(2)
    subscribers = [first, *[await hub.subscribe(TEAM) for _ in range(19)]]
    while hub._fetching:
        await asyncio.sleep(0)
    before = len(asyncio.all_tasks())
    clients = [FakeClient() for _ in subscribers]
    request = _request(tmp_path)
    running = [
        asyncio.create_task(live._stream(request, hub, s, 2, c.send, c.receive))
        for s, c in zip(subscribers, clients, strict=True)
    ]
    while any(s.writer is None for s in subscribers):
        await asyncio.sleep(0)

    assert len(asyncio.all_tasks()) == before + len(running)  # each stream's own, no watcher
    clients[0].gone.set()
    assert await asyncio.wait_for(running[0], 2) is False
    assert hub.clients() == 19  # the client that left is out of the hub
    for client in clients[1:]:
        client.gone.set()
    assert await asyncio.wait_for(asyncio.gather(*running), 2) == [False] * 20
    assert hub.clients() == 0
