"""Presence expiry is driven by timer commands: a device unheard for the TTL goes offline."""

from __future__ import annotations

import time

from tests.integration.conftest import read_topic
from tests.stack import ChorusStack


def test_a_device_without_heartbeats_goes_offline_after_the_ttl(stack: ChorusStack) -> None:
    stack.presence_ttl = 2.0
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()

    answer = alice.post(
        f"/v1/teams/{team_id}/presence", {"status": "busy", "device_id": "phone"}, Prefer="wait=10"
    )
    assert answer.status_code == 200, answer.text

    deadline = time.monotonic() + 20
    expired: list[dict[str, object]] = []
    while not expired and time.monotonic() < deadline:
        time.sleep(0.5)
        expired = [
            e
            for e in read_topic(stack.kafka, stack.topics.events)
            if e["type"] == "presence.changed" and e["actor"] == "system:presence-timer"
        ]
    assert expired, "no expiry within 20 s for a 2 s TTL"
    assert expired[0]["data"]["status"] == "offline"  # type: ignore[index]
    assert expired[0]["data"]["user_id"] == alice.user_id  # type: ignore[index]
