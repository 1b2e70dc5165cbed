"""A media node's duties from the log alone (no Kafka): host what the latest allocation names,
allocate what it owns, and record a dropped participant's leave and speaking changes with
deterministic ids."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from config.settings import Settings
from media.allocation import allocate_id, leave_id, speaking_id
from media.directory import NodeStatus
from media.feed import Record
from media.node import MediaNode
from schemas.commands import AllocateRoom, CommandPayload, LeaveCall, ReportSpeaking
from schemas.topics import Topics

TOPICS = Topics(prefix="unit")
TEAM, CALL = "team-1", "call-1"


class FakeOutbox:
    """Keeps the commands a node would append."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, str, str, CommandPayload]] = []

    def command(self, team_id: str, command_id: str, actor: str, payload: CommandPayload) -> None:
        self.commands.append((team_id, command_id, actor, payload))


class Events:
    """Records of one team's log as the events topic holds them."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, type_: str, **data: Any) -> Record:
        self.seq += 1
        envelope = {
            "event_id": f"e{self.seq}",
            "type": type_,
            "version": 1,
            "team_id": TEAM,
            "seq": self.seq,
            "occurred_at": "2026-11-23T19:30:00.000Z",
            "actor": "ann",
            "causation_id": f"c{self.seq}",
            "data": {"call_id": CALL, **data},
            "prev_hash": "0" * 64,
            "hash": "0" * 64,
        }
        return Record(TOPICS.events, 1, TEAM.encode(), orjson.dumps(envelope))


def heartbeat(node_id: str) -> Record:
    status = NodeStatus(node_id, "local", f"http://{node_id}", 0, 0, 10, False, _now_ms())
    return Record(TOPICS.media_nodes, 0, node_id.encode(), status.to_bytes())


def _now_ms() -> int:
    return int(time.time() * 1000)


def make_node() -> tuple[MediaNode, FakeOutbox]:
    settings = Settings(topics=TOPICS, media_node_id="me", media_port=9100)
    node = MediaNode(settings, CollectorRegistry())
    outbox = FakeOutbox()
    node._outbox = outbox  # type: ignore[assignment]
    return node, outbox


async def test_the_owner_allocates_a_new_call_then_hosts_the_room_the_log_gives_it() -> None:
    node, outbox = make_node()
    event = Events()
    node._on_batch([heartbeat("me"), event("call.started", started_by="ann", invitees=[])], True)
    offer_url = f"http://me/v1/rooms/{CALL}/offer"  # the base URL its heartbeat gives
    allocation = AllocateRoom(call_id=CALL, node="me", offer_url=offer_url)
    assert outbox.commands == [(TEAM, allocate_id(CALL, 0), "media:me", allocation)]
    assert node.mixer.rooms == {}  # not hosted until the log says so

    node._on_batch([event("media.room_allocated", node="me", offer_url=offer_url)], False)
    assert node.room_for(CALL) is not None
    assert node.status().rooms == 1 and node.status().participants == 1

    node._on_batch([event("media.room_allocated", node="other", offer_url="http://o")], False)
    await asyncio.sleep(0)  # the release runs as a task
    assert node.room_for(CALL) is None and node.mixer.rooms == {}


async def test_a_restarted_node_does_not_host_a_room_that_moved_away() -> None:
    node, _ = make_node()
    event = Events()
    records = [
        heartbeat("me"),
        event("call.started", started_by="ann", invitees=[]),
        event("media.room_allocated", node="me", offer_url="http://me"),
        event("media.room_allocated", node="other", offer_url="http://o"),
    ]
    node._on_batch(records, True)
    assert node.mixer.rooms == {}


async def test_a_dropped_participant_leaves_once_per_join() -> None:
    node, outbox = make_node()
    event = Events()
    node._on_batch(
        [
            heartbeat("me"),
            event("call.started", started_by="ann", invitees=[]),
            event("call.participant_joined", user_id="bob"),
            event("media.room_allocated", node="me", offer_url="http://me"),
        ],
        True,
    )
    outbox.commands.clear()
    node._on_leave(CALL, "bob")
    assert outbox.commands == [(TEAM, leave_id(CALL, "bob", 1), "bob", LeaveCall(call_id=CALL))]
    node._on_batch([event("call.participant_left", user_id="bob")], False)
    outbox.commands.clear()
    node._on_leave(CALL, "bob")  # already out of the call: nothing to record
    assert outbox.commands == []


def test_speaking_reports_have_ids_from_call_user_room_join_and_change() -> None:
    node, outbox = make_node()
    event = Events()
    node._on_batch(
        [
            heartbeat("me"),
            event("call.started", started_by="ann", invitees=[]),
            event("media.room_allocated", node="me", offer_url="http://me"),
        ],
        True,
    )
    outbox.commands.clear()
    node._on_speaking(CALL, "ann", True)
    node._on_speaking(CALL, "ann", False)
    node._on_batch([event("media.room_allocated", node="me", offer_url="http://me")], False)
    node._on_speaking(CALL, "ann", True)  # the room's second allocation: a new series
    ids = [command_id for _, command_id, _, _ in outbox.commands]
    assert ids == [
        speaking_id(CALL, "ann", 1, 1, 1),
        speaking_id(CALL, "ann", 1, 1, 2),
        speaking_id(CALL, "ann", 2, 1, 3),
    ]
    assert len(set(ids)) == 3 and speaking_id(CALL, "ann", 1, 1, 1) == ids[0]  # retry: same id
    assert outbox.commands[0][3] == ReportSpeaking(call_id=CALL, user_id="ann", speaking=True)
    assert {actor for _, _, actor, _ in outbox.commands} == {"media:me"}
