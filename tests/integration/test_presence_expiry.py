"""Presence is a lease: heartbeats refresh it without events; a device unheard for the TTL goes
offline by a timer command."""

from __future__ import annotations

import time
from typing import Any

from schemas.clock import parse_time
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack

TTL = 2.0


def _presence_events(stack: ChorusStack, team_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in read_topic(stack.kafka, stack.topics.events)
        if e["team_id"] == team_id and e["type"] == "presence.changed"
    ]


def test_heartbeats_keep_a_device_online_without_events_until_they_stop(
    stack: ChorusStack,
) -> None:
    stack.presence_ttl = TTL
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    presence = f"/v1/teams/{team_id}/presence"

    answer = alice.post(presence, {"status": "busy", "device_id": "phone"}, Prefer="wait=10")
    assert answer.status_code == 200, answer.text
    set_seq = answer.json()["position"]

    # Heartbeats for twice the TTL: each answered accepted with no events, the device online.
    beats_until = time.monotonic() + 2 * TTL
    while time.monotonic() < beats_until:
        beat = alice.post(f"{presence}/heartbeat", {"device_id": "phone"}, Prefer="wait=10")
        assert beat.status_code == 200, beat.text
        last_beat = time.monotonic()
        assert beat.json() | {"command_id": None} == {
            "command_id": None,
            "status": "accepted",
            "position": set_seq,  # the team's seq: nothing was appended
            "events": [],
        }
        looked_up = alice.get(f"/v1/commands/{beat.json()['command_id']}")
        assert looked_up.json()["events"] == [] and looked_up.json()["status"] == "accepted"
        time.sleep(TTL / 4)
    assert [e["actor"] for e in _presence_events(stack, team_id)] == [alice.user_id]

    # Silenced: offline once the lease runs out (the timer looks every 0.25 s).
    expired: list[dict[str, Any]] = []
    while not expired and time.monotonic() < last_beat + 20:
        time.sleep(0.2)
        expired = [
            e for e in _presence_events(stack, team_id) if e["actor"] == "system:presence-timer"
        ]
    assert expired, "no expiry within 20 s for a 2 s TTL"
    data = expired[0]["data"]
    assert (data["status"], data["user_id"]) == ("offline", alice.user_id)
    # Last seen at its last heartbeat (after the set): the expiry records when it was last heard.
    (device,) = data["devices"]
    set_event = _presence_events(stack, team_id)[0]
    assert device["last_seen"] > set_event["occurred_at"]
    unheard = parse_time(expired[0]["occurred_at"]) - parse_time(device["last_seen"])
    assert unheard.total_seconds() > TTL

    # The next heartbeat brings it back: a change a person sees, so it is recorded.
    back = alice.post(f"{presence}/heartbeat", {"device_id": "phone"}, Prefer="wait=10")
    assert back.status_code == 200, back.text
    (event,) = back.json()["events"]
    assert event["data"]["status"] == "busy" and event["data"]["device_id"] == "phone"


def test_a_restarted_worker_does_not_take_online_devices_offline(stack: ChorusStack) -> None:
    stack.presence_ttl = 4.0
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    presence = f"/v1/teams/{team_id}/presence"
    answer = alice.post(presence, {"status": "busy", "device_id": "phone"}, Prefer="wait=10")
    assert answer.status_code == 200, answer.text
    set_at = time.monotonic()
    beat = alice.post(f"{presence}/heartbeat", {"device_id": "phone"}, Prefer="wait=10")
    assert beat.status_code == 200 and beat.json()["events"] == [], beat.text

    # The worker dies with the lease it kept; its log says only "set at set_at".
    first = stack.children[0]
    assert first.name == "worker" and first.process is not None
    first.process.kill()
    first.process.wait(30)
    time.sleep(max(0.0, set_at + 4.0 + 1.0 - time.monotonic()))  # the recorded time is stale
    stack.wait_worker_ready(stack.start("worker"))

    # Within the TTL of the takeover, the device's next heartbeat: it never went offline.
    time.sleep(2.0)
    until = time.monotonic() + 4.0 + 2.0
    while time.monotonic() < until:
        beat = alice.post(f"{presence}/heartbeat", {"device_id": "phone"}, Prefer="wait=10")
        assert beat.status_code == 200 and beat.json()["events"] == [], beat.text
        time.sleep(1.0)
    assert [e["actor"] for e in _presence_events(stack, team_id)] == [alice.user_id]
