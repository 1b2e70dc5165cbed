"""Operators' views of a running stack: a team's timeline from the log with its chain status, the
media rooms and their node, and the sampled metrics; the worker, commands and media services run
as processes, the admin service in-process (sampling every half second)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pyotp
from confluent_kafka import Producer

from admin.app import create_app
from admin.operators import add_operator
from config.settings import Settings
from replay.reading import team_partition
from schemas.envelope import record_from_bytes, record_to_bytes
from tests.asgi import started
from tests.integration.conftest import read_topic
from tests.integration.operators import first_sign_in
from tests.stack import ChorusStack


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


async def _until(
    read: Callable[[], Awaitable[Any]], ready: Callable[[Any], bool], timeout: float = 60.0
) -> Any:
    """`await read()` once `ready(answer)` holds, or the last answer after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await read()
        if ready(answer) or time.monotonic() > deadline:
            return answer
        await _pause()


async def _pause() -> None:
    await asyncio.sleep(0.25)


async def test_timeline_media_rooms_and_metrics_of_a_running_stack(stack: ChorusStack) -> None:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands = stack.start("commands")
    media = stack.start("media")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    presence = alice.post(
        f"/v1/teams/{team_id}/presence",
        {"status": "available", "device_id": "laptop"},
        Prefer="wait=10",
    )
    assert presence.status_code == 200, presence.text
    call = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": [bob.user_id]}, Prefer="wait=10")
    assert call.status_code == 200, call.text
    call_id = call.json()["call_id"]

    settings = Settings(
        data_dir=stack.workdir,
        kafka_bootstrap=stack.kafka,
        database_url=stack.database_url,
        secret=stack.secret,
        topics=stack.topics,
        partitions=stack.partitions,
        worker_id=stack.worker_id,
        worker_port=_port(worker),
        commands_port=_port(commands),
        media_port=_port(media),
        queries_port=1,  # not running: its scrapes fail, and are counted so
        web_port=1,
    )
    made = add_operator(stack.database_url, f"ops-{uuid.uuid4().hex[:8]}@example.com")
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    async with started(create_app(settings, sample_seconds=0.5)) as admin:
        session = await admin.post(
            "/v1/admin/sessions",
            json=first_sign_in(made.email, made.password, totp),
        )
        assert session.status_code == 201, session.text
        admin.headers["Authorization"] = f"Bearer {session.json()['token']}"
        await _rooms(admin, call_id, team_id)
        await _timeline(admin, stack, team_id, call_id)
        await _metrics(admin)


async def _rooms(admin: httpx.AsyncClient, call_id: str, team_id: str) -> None:
    async def read() -> Any:
        return (await admin.get("/v1/admin/media/rooms")).json()

    def placed(view: Any) -> bool:
        return any(room["call_id"] == call_id and room["node"] for room in view["rooms"])

    view = await _until(read, placed)
    assert view["caught_up"] is True
    [node] = view["nodes"]
    assert node["alive"] is True and node["region"] == "local"
    [room] = [room for room in view["rooms"] if room["call_id"] == call_id]
    assert (room["team_id"], room["node"], room["node_alive"]) == (team_id, node["node_id"], True)
    assert room["active"] is True and room["participants"] == 1


async def _timeline(
    admin: httpx.AsyncClient, stack: ChorusStack, team_id: str, call_id: str
) -> None:
    path = f"/v1/admin/teams/{team_id}/events"

    async def read() -> Any:
        return (await admin.get(path, params={"limit": "500"})).json()

    whole = await _until(
        read, lambda page: "media.room_allocated" in [e["type"] for e in page["events"]]
    )
    events = whole["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["chain"] == "ok" and e["problems"] == [] for e in events)
    assert whole["checked_from"] == "genesis" and whole["next_after"] is None
    assert whole["partition"] == team_partition(team_id, stack.partitions)
    started_call = next(e for e in events if e["type"] == "call.started")
    assert started_call["data"]["call_id"] == call_id

    assert len(events) >= 3  # presence, call, room (and maybe more)
    first = (await admin.get(path, params={"limit": "2"})).json()
    assert [e["seq"] for e in first["events"]] == [1, 2] and first["next_after"] == 2
    rest = (await admin.get(path, params={"after": "2", "limit": "500"})).json()
    assert [e["seq"] for e in rest["events"]] == [e["seq"] for e in events[2:]]
    assert rest["next_after"] is None

    # A record written again with other content (an edit of the log) is named, where it lies.
    last = _last_record(stack, team_id)
    forged = {**last, "data": {**last["data"], "forged": True}}
    producer = Producer({"bootstrap.servers": stack.kafka, "partitioner": "murmur2_random"})
    producer.produce(stack.topics.events, key=team_id.encode(), value=record_to_bytes(forged))
    assert producer.flush(10) == 0
    after = str(last["seq"] - 1)

    def flagged(page: Any) -> bool:
        return any(event["problems"] for event in page["events"])

    tail = await _until(lambda: _json(admin.get(path, params={"after": after})), flagged)
    [bad] = [event for event in tail["events"] if event["problems"]]
    assert (bad["seq"], bad["chain"], bad["data"].get("forged")) == (last["seq"], "broken", True)
    assert [p["kind"] for p in bad["problems"]] == ["duplicate_differs"]
    original = tail["events"][0]
    assert (original["seq"], original["chain"]) == (last["seq"], "ok")

    assert (await admin.get(f"/v1/admin/teams/{uuid.uuid4()}/events")).status_code == 404
    for query in ({"limit": "0"}, {"limit": "501"}, {"after": "-1"}, {"after": "x"}):
        refused = await admin.get(path, params=query)
        assert refused.status_code == 422, (query, refused.text)
        assert refused.json()["error"]["code"] == "invalid_query"


async def _json(response: Awaitable[httpx.Response]) -> Any:
    return (await response).json()


def _last_record(stack: ChorusStack, team_id: str) -> dict[str, Any]:
    records = [
        record
        for record in read_topic(stack.kafka, stack.topics.events, stack.partitions)
        if record is not None and record.get("team_id") == team_id
    ]
    last = max(records, key=lambda record: record["seq"])
    return record_from_bytes(record_to_bytes(last))


async def _metrics(admin: httpx.AsyncClient) -> None:
    def figures(body: Any) -> dict[str, dict[str, Any]]:
        return {
            f"{panel['key']}/{figure['label']}": figure
            for panel in body["panels"]
            for figure in panel["figures"]
        }

    async def read() -> Any:
        return figures((await admin.get("/v1/admin/metrics")).json())

    def sampled(found: Any) -> bool:
        return (found["calls_active/active calls now"]["hour"] or 0) >= 1 and any(
            key.startswith("decider_lag/") for key in found
        )

    found = await _until(read, sampled)
    assert found["calls_active/active calls now"]["hour"] == 1
    assert found["calls_active/participants now"]["hour"] == 1
    assert found["decider_lag/partition 0 now"]["hour"] == 0  # everything is decided
    assert any(key.startswith("node_rooms/") for key in found)
    assert (found["failures/failed scrapes"]["hour"] or 0) >= 1  # queries and web: not running
    assert found["failures/503 answers"]["hour"] == 0
    exported = (await admin.get("/metrics")).text
    assert 'chorus_decider_lag{partition="0"} 0.0' in exported
    assert "chorus_calls_active 1.0" in exported
