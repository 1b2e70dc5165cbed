"""A worker killed with SIGKILL mid-stream loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from typing import Any

import httpx

from devstack.server import signal_group
from schemas.envelope import verify_chain
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client

COMMANDS = 240
KILL_AFTER = 80


def _command(index: int, team_id: str, member: Client) -> tuple[str, dict[str, Any]]:
    if index % 3 == 0:
        return f"/v1/teams/{team_id}/calls", {"invitees": []}
    status = ("available", "busy", "away")[index % 3]
    return f"/v1/teams/{team_id}/presence", {"status": status, "device_id": f"d{index % 5}"}


async def _send_all(
    base_url: str, plan: list[tuple[Client, str, dict[str, Any]]], on_acked: Any
) -> list[str]:
    acked: list[str] = []
    semaphore = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def send(member: Client, path: str, body: dict[str, Any]) -> None:
            async with semaphore:
                answer = await client.post(path, json=body, headers=member.headers())
            assert answer.status_code == 202, answer.text
            acked.append(answer.json()["command_id"])
            on_acked(len(acked))

        await asyncio.gather(*(send(*step) for step in plan))
    return acked


def test_sigkill_during_a_stream_leaves_one_outcome_per_command(stack: ChorusStack) -> None:
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    members = [stack.client(commands).sign_up(f"m{i}") for i in range(3)]
    teams = [members[i].new_team(*(m for m in members if m is not members[i])) for i in range(3)]
    plan = []
    for index in range(COMMANDS):
        member = members[index % 3]
        path, body = _command(index, teams[(index // 3) % 3], member)
        plan.append((member, path, body))
    victim = stack.children[0]
    assert victim.name == "worker" and victim.process is not None
    killed = {"done": False}

    def maybe_kill(count: int) -> None:
        if count >= KILL_AFTER and not killed["done"]:
            killed["done"] = True
            assert victim.process is not None
            signal_group(victim.process.pid, signal.SIGKILL)

    acked = asyncio.run(_send_all(commands, plan, maybe_kill))
    assert killed["done"]
    assert victim.process.wait(10) == -signal.SIGKILL
    stack.start("worker")

    outcomes = _wait_all_decided(members, acked)
    events = read_topic(stack.kafka, stack.topics.events)
    unique = _dedupe(events)
    assert verify_chain(unique) == []
    by_command: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in unique:
        by_command[record["causation_id"]].append(record)
    assert set(by_command) == set(acked)
    for command_id in acked:
        assert outcomes[command_id]["events"] == by_command[command_id]


def _dedupe(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Skip repeated (team_id, seq), as every consumer does; repeats must be identical."""
    seen: dict[tuple[str, int], dict[str, Any]] = {}
    unique = []
    for record in events:
        key = (record["team_id"], record["seq"])
        if key in seen:
            assert seen[key] == record, f"two different records at {key}"
            continue
        seen[key] = record
        unique.append(record)
    return unique


def _wait_all_decided(members: list[Client], acked: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 120
    outcomes: dict[str, dict[str, Any]] = {}
    pending = set(acked)
    while pending and time.monotonic() < deadline:
        for command_id in list(pending):
            for member in members:
                answer = member.get(f"/v1/commands/{command_id}")
                if answer.status_code == 200 and answer.json()["status"] != "pending":
                    outcomes[command_id] = answer.json()
                    pending.discard(command_id)
                    break
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} acknowledged commands never decided"
    return outcomes
