"""A commands process accepts no more than its backlog of undecided commands: then 503, nothing
appended, until the worker's decisions come in (real Kafka, PostgreSQL, worker)."""

from __future__ import annotations

import time

import httpx

from tests.integration.conftest import read_topic
from tests.stack import ChorusStack

LIMIT = 3


def _metric(base_url: str, name: str) -> float:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    assert values, f"{name} is not in {base_url}/metrics"
    return values[0]


def test_with_no_worker_deciding_the_process_refuses_past_its_backlog_then_takes_again(
    stack: ChorusStack,
) -> None:
    commands = stack.start("commands", env={"CHORUS_COMMANDS_BACKLOG": str(LIMIT)})
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    path = f"/v1/teams/{team_id}/presence"

    accepted = [alice.post(path, {"status": "busy", "device_id": f"d{n}"}) for n in range(LIMIT)]
    assert [answer.status_code for answer in accepted] == [202] * LIMIT
    refused = alice.post(path, {"status": "away", "device_id": "d9"}, **{"Idempotency-Key": "k"})

    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    assert "nothing was changed" in refused.json()["error"]["message"]
    assert _metric(commands, "chorus_commands_undecided") == LIMIT
    assert _metric(commands, "chorus_commands_overloaded_total") == 1
    sent = read_topic(stack.kafka, stack.topics.commands)
    assert sorted(c["command_id"] for c in sent) == sorted(a.json()["command_id"] for a in accepted)

    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    deadline = time.monotonic() + 60
    while _metric(commands, "chorus_commands_undecided") > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(commands, "chorus_commands_undecided") == 0
    # The refused request's key was released: its retry is a new command, decided.
    retried = alice.post(
        path, {"status": "away", "device_id": "d9"}, **{"Idempotency-Key": "k", "Prefer": "wait=10"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "accepted"
    for answer in accepted:
        decided = alice.get(f"/v1/commands/{answer.json()['command_id']}")
        assert decided.json()["status"] == "accepted"
