"""The media tier on the real stack: a call's room is allocated from its events, three real
aiortc clients hear each other and not themselves, mute, leave, end, and a node that dies."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx

from tests.e2e.media_call import SETTLE, MediaCall
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack
from tests.tones import TONES, ToneClient


def _start(stack: ChorusStack, media_nodes: int) -> tuple[str, str, list[str]]:
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    queries = stack.start("queries")
    nodes = [stack.start("media") for _ in range(media_nodes)]
    for node in nodes:
        stack.wait_worker_ready(node)  # /readyz: caught up with the log, taking rooms
    return commands, queries, nodes


def _left(stack: ChorusStack, call_id: str, user_id: str | None) -> int:
    return sum(
        1
        for record in read_topic(stack.kafka, stack.topics.events)
        if record["type"] == "call.participant_left"
        and record["data"] == {"call_id": call_id, "user_id": user_id}
    )


async def test_three_clients_hear_each_other_mute_leave_and_end(stack: ChorusStack) -> None:
    commands, queries, (node,) = _start(stack, media_nodes=1)
    call = MediaCall.start(stack, commands, queries)
    spare = ToneClient("ann")  # offers of someone else, or after the end
    try:
        url = await call.offer_url()
        assert url == f"{node}/v1/rooms/{call.call_id}/offer"
        await asyncio.gather(*(call.connect(url, name) for name in TONES))
        await call.hear_each_other(set(TONES))
        # The mixer hears everyone's tone: everyone is speaking, in the read model.
        await call.wait_call(lambda c: all(p["speaking"] for p in c["participants"]))
        async with httpx.AsyncClient(timeout=15) as http:
            metrics = (await http.get(f"{node}/metrics")).text
        assert "chorus_media_rooms 1.0" in metrics
        assert "chorus_media_participants 3.0" in metrics
        assert "chorus_media_join_seconds_count 3.0" in metrics

        refused = await call.post_offer(url, "eve", await spare.offer())
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "not_a_participant"
        bad = await call.post_offer(url, "ann", "v=0\r\nnot sdp")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_sdp"

        muted = await asyncio.to_thread(call.command, "cat", "mute", {"muted": True})
        assert muted.status_code == 202
        await call.hear_each_other(set(TONES), muted=frozenset({"cat"}))
        cat_id = call.members["cat"].user_id
        await call.wait_call(
            lambda c: not next(p for p in c["participants"] if p["user_id"] == cat_id)["speaking"]
        )

        await call.tones["bob"].close()
        bob_id = call.members["bob"].user_id
        await call.wait_call(lambda c: bob_id not in {p["user_id"] for p in c["participants"]})
        # The client's own leave comes too late to count twice.
        await asyncio.to_thread(call.command, "bob", "leave")
        await call.hear_each_other({"ann", "cat"}, muted=frozenset({"cat"}))
        assert await asyncio.to_thread(_left, stack, call.call_id, bob_id) == 1

        assert (await asyncio.to_thread(call.command, "ann", "end")).status_code == 202
        await call.wait_call(lambda c: c["state"] == "ended" and c["media"] is None)
        deadline = time.monotonic() + SETTLE
        while True:
            gone = await call.post_offer(url, "ann", await spare.offer())
            if gone.status_code == 404:
                break
            assert time.monotonic() < deadline, gone.text
        assert gone.json()["error"]["code"] == "unknown_room"
    finally:
        await asyncio.gather(call.close(), spare.close())


async def test_a_killed_nodes_room_moves_and_the_clients_hear_each_other_again(
    stack: ChorusStack,
) -> None:
    commands, queries, nodes = _start(stack, media_nodes=2)
    call = MediaCall.start(stack, commands, queries)
    try:
        url = await call.offer_url()
        await asyncio.gather(*(call.connect(url, name) for name in TONES))
        await call.hear_each_other(set(TONES))

        holder = next(child for child in stack.children if url.startswith(child.health_url[:-8]))
        assert holder.process is not None
        os.killpg(holder.process.pid, signal.SIGKILL)
        killed = time.monotonic()
        moved = await call.offer_url(not_this=url, timeout=5.0)
        assert time.monotonic() - killed < 5.0
        assert not moved.startswith(holder.health_url[:-8])

        await asyncio.gather(*(call.connect(moved, name) for name in TONES))
        await call.hear_each_other(set(TONES))
        async with httpx.AsyncClient(timeout=15) as http:
            survivor = next(node for node in nodes if moved.startswith(node))
            assert (await http.get(f"{survivor}/readyz")).status_code == 200
    finally:
        await call.close()


async def test_a_node_stopped_by_sigterm_drains_and_hands_its_room_over(
    stack: ChorusStack,
) -> None:
    commands, queries, _ = _start(stack, media_nodes=2)
    call = MediaCall.start(stack, commands, queries)
    try:
        url = await call.offer_url()
        await asyncio.gather(*(call.connect(url, name) for name in TONES))
        holder = next(child for child in stack.children if url.startswith(child.health_url[:-8]))
        await asyncio.to_thread(holder.stop)  # SIGTERM; returns when the process has exited

        # It said it was draining, and it exited only once its room was allocated elsewhere.
        heartbeats = await asyncio.to_thread(read_topic, stack.kafka, stack.topics.media_nodes, 1)
        mine = [h for h in heartbeats if h is not None and url.startswith(h["base_url"])]
        assert any(h["draining"] for h in mine)
        assert None in heartbeats  # then it left the directory (its tombstone: no other stopped)
        events = await asyncio.to_thread(read_topic, stack.kafka, stack.topics.events)
        rooms = [
            e["data"]["offer_url"]
            for e in events
            if e["type"] == "media.room_allocated" and e["data"]["call_id"] == call.call_id
        ]
        assert len(rooms) == 2 and rooms[0] == url and rooms[1] != url

        moved = await call.offer_url(not_this=url)
        assert moved == rooms[1]
        await asyncio.gather(*(call.connect(moved, name) for name in TONES))
        await call.hear_each_other(set(TONES))
    finally:
        await call.close()
