"""The projector on real processes: commands over HTTP end up in the PostgreSQL read models,
and a projector killed with SIGKILL mid-burst leaves them equal to the log's fold."""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import httpx
import psycopg

from devstack.server import signal_group
from schemas.clock import TIME_PATTERN
from streams.readmodels.store import CHANNEL
from tests.integration.read_models import plan, send, settled, stored, three_teams
from tests.stack import ChorusStack, Client

BURST = 320
KILL_AFTER = 110
CHANGES = 10


def decided(member: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = member.post(path, body, Prefer="wait=10")
    assert answer.status_code in (200, 409), answer.text
    return dict(answer.json())


def start(stack: ChorusStack) -> str:
    stack.presence_ttl = 3600.0  # no expiry events while the test compares
    stack.wait_worker_ready(stack.start("worker"))
    return stack.start("commands")


def stack_worker(stack: ChorusStack) -> str:
    worker = next(child for child in stack.children if child.name == "worker")
    return worker.health_url.removesuffix("/healthz")


def test_commands_end_up_in_the_read_models_in_the_contract_shapes(stack: ChorusStack) -> None:
    commands = start(stack)
    alice, bob = stack.client(commands).sign_up("alice"), stack.client(commands).sign_up("bob")
    assert alice.user_id and bob.user_id
    team = alice.new_team(bob)
    decided(alice, f"/v1/teams/{team}/presence", {"status": "busy", "device_id": "laptop"})
    first = decided(alice, f"/v1/teams/{team}/calls", {"invitees": [bob.user_id], "topic": "1:1"})
    c1 = first["events"][0]["data"]["call_id"]
    decided(bob, f"/v1/calls/{c1}/join", {})
    decided(bob, f"/v1/calls/{c1}/mute", {"muted": True})
    decided(alice, f"/v1/calls/{c1}/leave", {})
    decided(bob, f"/v1/calls/{c1}/end", {})
    rejected = decided(bob, f"/v1/calls/{c1}/join", {})
    assert rejected["status"] == "rejected"
    second = decided(alice, f"/v1/teams/{team}/calls", {"invitees": []})
    c2 = second["events"][0]["data"]["call_id"]

    models = settled(stack, [])

    assert models.positions == {team: 8}
    member = models.members[(team, alice.user_id)]
    assert set(member) == {"user_id", "status", "devices", "last_seen"}
    assert (member["user_id"], member["status"]) == (alice.user_id, "busy")
    assert [(d["device_id"], d["status"]) for d in member["devices"]] == [("laptop", "busy")]
    assert re.match(TIME_PATTERN, member["last_seen"])
    ended, active = models.calls[c1][3], models.calls[c2][3]
    assert set(ended) == {
        "call_id", "team_id", "state", "topic", "started_by", "started_at", "ended_at",
        "participants", "media",
    }  # fmt: skip
    assert (ended["state"], ended["topic"], ended["participants"]) == ("ended", "1:1", [])
    assert ended["started_by"] == alice.user_id and ended["ended_at"] >= ended["started_at"]
    assert models.calls[c1][:3] == (team, "ended", ended["started_at"])
    assert (active["state"], active["topic"], active["ended_at"], active["media"]) == (
        "active", None, None, None,
    )  # fmt: skip
    assert active["participants"] == [
        {"user_id": alice.user_id, "joined_at": active["started_at"], "muted": False,
         "speaking": False},
    ]  # fmt: skip
    kinds = [models.changes[(team, seq)][0] for seq in range(1, 9) if (team, seq) in models.changes]
    assert kinds == ["presence", "call", "call", "call", "call", "call", "call"]
    assert (team, 7) not in models.changes  # the rejected join changed nothing


def test_each_change_is_committed_then_announced_in_order(stack: ChorusStack) -> None:
    commands = start(stack)
    alice = stack.client(commands).sign_up("alice")
    assert alice.user_id
    team = alice.new_team()
    url = stack.database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        # The worker answers /readyz before its group has partitions: the first may take a while.
        alice.post(f"/v1/teams/{team}/presence", {"status": "away", "device_id": "d"})
        assert next(listener.notifies(timeout=60, stop_after=1)).payload == f"{team}:1"
        for index in range(CHANGES):
            status = ("available", "busy")[index % 2]
            answer = alice.post(f"/v1/teams/{team}/presence", {"status": status, "device_id": "d"})
            assert answer.status_code == 202, answer.text
            note = next(listener.notifies(timeout=10, stop_after=1))
            assert note.payload == f"{team}:{index + 2}"
            # Announced only once committed: the read model already holds the change.
            models = stored(stack.database_url)
            assert models.positions[team] == index + 2
            assert models.members[(team, alice.user_id)]["status"] == status


def test_a_projector_killed_mid_burst_leaves_the_read_models_equal_to_the_log(
    stack: ChorusStack,
) -> None:
    commands = start(stack)
    setup = three_teams(stack, commands)
    # The worker answers before its group is assigned: kill it only once it is projecting.
    deadline = time.monotonic() + 60
    while len(stored(stack.database_url).positions) < len(setup.teams):
        assert time.monotonic() < deadline, "the projector never started"
        time.sleep(0.1)
    victim = stack.children[0]
    assert victim.name == "worker" and victim.process is not None
    at_kill: dict[str, int] = {}

    def maybe_kill(count: int) -> None:
        if count == KILL_AFTER:
            assert victim.process is not None
            signal_group(victim.process.pid, signal.SIGKILL)
            at_kill.update(stored(stack.database_url).positions)

    acked = send(commands, plan(setup, BURST), maybe_kill)
    assert victim.process.wait(10) == -signal.SIGKILL
    restarted = stack.start("worker")

    models = settled(stack, acked)

    assert sum(models.positions.values()) > sum(at_kill.values()) + BURST // 2
    metrics = httpx.get(f"{restarted}/metrics", timeout=5).text
    print(
        "\n"
        + "\n".join(
            m for m in metrics.splitlines() if m.startswith("chorus_events_projected_total")
        )
    )
