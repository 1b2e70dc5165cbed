"""The command side end to end over HTTP: real commands service, real Faust worker, real Kafka."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx

from devstack.server import free_port
from schemas.envelope import verify_chain
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client


def _started(stack: ChorusStack) -> tuple[str, Client, Client, str]:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    return commands, alice, bob, team_id


def test_sign_up_to_first_accepted_command(stack: ChorusStack) -> None:
    _, alice, _, team_id = _started(stack)

    answer = alice.post(
        f"/v1/teams/{team_id}/presence",
        {"status": "available", "device_id": "laptop"},
        Prefer="wait=10",
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "accepted"
    assert [event["type"] for event in body["events"]] == ["presence.changed"]
    assert body["events"][0]["data"]["user_id"] == alice.user_id
    assert body["events"][0]["causation_id"] == body["command_id"]
    stored = alice.get(f"/v1/commands/{body['command_id']}")
    assert stored.status_code == 200
    assert stored.json()["status"] == "accepted"


def test_a_command_without_wait_is_202_then_decided(stack: ChorusStack) -> None:
    _, alice, bob, team_id = _started(stack)

    answer = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": [bob.user_id]})

    assert answer.status_code == 202, answer.text
    command_id = answer.json()["command_id"]
    assert set(answer.json()) == {"command_id", "position", "call_id"}
    deadline = time.monotonic() + 20
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        answer = alice.get(f"/v1/commands/{command_id}")
        # Pending is recorded off the request path: for a moment the id may still be unknown.
        status = answer.json()["status"] if answer.status_code == 200 else "pending"
        time.sleep(0.1)
    assert status == "accepted"
    assert bob.get(f"/v1/commands/{command_id}").status_code == 404  # not bob's command


def test_the_double_click_gives_one_call_and_names_it_to_the_loser(stack: ChorusStack) -> None:
    commands, alice, _, team_id = _started(stack)

    async def click() -> httpx.Response:
        async with httpx.AsyncClient(base_url=commands, timeout=30) as client:
            return await client.post(
                f"/v1/teams/{team_id}/calls",
                json={"invitees": []},
                headers=alice.headers(Prefer="wait=10"),
            )

    async def double_click() -> list[httpx.Response]:
        return list(await asyncio.gather(click(), click()))

    first, second = asyncio.run(double_click())

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert loser.json()["reason"] == "already_in_call"
    # The 409 names the call that exists (the winner's), never the rejected command's own.
    assert loser.json()["call_id"] == winner.json()["call_id"]
    rejection = alice.get(f"/v1/commands/{loser.json()['command_id']}").json()
    assert rejection["events"][0]["data"]["call_id"] == winner.json()["call_id"]
    assert rejection["call_id"] == winner.json()["call_id"]
    # ...so a client that follows it finds the call (joining it: already a participant).
    joined = alice.post(f"/v1/calls/{loser.json()['call_id']}/join", {}, Prefer="wait=10")
    assert (joined.status_code, joined.json()["reason"]) == (409, "already_joined")


def test_fifty_concurrent_starts_on_two_copies_make_exactly_one_call(stack: ChorusStack) -> None:
    first, alice, _, team_id = _started(stack)
    second = stack.start("commands")
    key = f"start-{uuid.uuid4()}"

    async def start(index: int) -> httpx.Response:
        headers = alice.headers(**({"Idempotency-Key": key} if index % 2 == 0 else {}))
        async with httpx.AsyncClient(base_url=(first, second)[index % 4 // 2], timeout=30) as c:
            return await c.post(
                f"/v1/teams/{team_id}/calls", json={"invitees": []}, headers=headers
            )

    async def storm() -> list[httpx.Response]:
        return list(await asyncio.gather(*(start(i) for i in range(50))))

    answers = asyncio.run(storm())

    assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
    keyed = {answers[i].json()["command_id"] for i in range(0, 50, 2)}
    assert len(keyed) == 1  # one key, one command, whichever copy answered
    command_ids = {answer.json()["command_id"] for answer in answers}
    _wait_decided(alice, command_ids)
    events = read_topic(stack.kafka, stack.topics.events)
    assert Counter(event["type"] for event in events)["call.started"] == 1
    assert verify_chain(events) == []


def test_kafka_down_answers_503_within_5_seconds(stack: ChorusStack) -> None:
    stack.kafka = f"127.0.0.1:{free_port()}"  # nothing listens there
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()

    started = time.monotonic()
    answer = alice.post(f"/v1/teams/{team_id}/presence", {"status": "busy", "device_id": "d"})
    elapsed = time.monotonic() - started

    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "kafka_unavailable"
    assert elapsed < 5.5


def _wait_decided(client: Client, command_ids: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = set(command_ids)
    while pending and time.monotonic() < deadline:
        for command_id in list(pending):
            answer = client.get(f"/v1/commands/{command_id}")
            # 404 for a moment: the pending row is written off the request path.
            if answer.status_code == 200 and answer.json()["status"] != "pending":
                pending.discard(command_id)
        time.sleep(0.1)
    assert not pending, f"{len(pending)} commands never decided"
