"""A worker that dies between a command's events and its outcome loses nothing, doubles nothing.

The worker is killed by a fault point at the exact place: the CRASH_AT-th batch of commands
with events (what one poll delivered) has them acknowledged by the broker, and the process exits
before recording the batch's outcomes.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections import defaultdict
from typing import Any

import httpx
from sqlalchemy import text

from config.faults import CRASH_EXIT_CODE
from db.engines import make_engine
from schemas.envelope import verify_chain
from streams.decider import AFTER_EVENTS_ACKED
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client

COMMANDS = 240
# Every command here has events, and the worker decides them by batches (`take_batches`):
# a batch can hold dozens of them, so the crash comes at the second batch with events, which
# `send_until_crash` reaches by sending a round only once the one before it was decided.
CRASH_AT = 2
ROUND = 15  # commands per round
CRASH_BETWEEN_EVENTS_AND_OUTCOME = f"{AFTER_EVENTS_ACKED}=crash@{CRASH_AT}"


def _command(index: int, team_id: str, member: Client) -> tuple[str, dict[str, Any]]:
    if index % 3 == 0:
        return f"/v1/teams/{team_id}/calls", {"invitees": []}
    status = ("available", "busy", "away")[index % 3]
    return f"/v1/teams/{team_id}/presence", {"status": status, "device_id": f"d{index % 5}"}


async def _send_all(base_url: str, plan: list[tuple[Client, str, dict[str, Any]]]) -> list[str]:
    acked: list[str] = []
    semaphore = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def send(member: Client, path: str, body: dict[str, Any]) -> None:
            async with semaphore:
                answer = await client.post(path, json=body, headers=member.headers())
            assert answer.status_code == 202, answer.text
            acked.append(answer.json()["command_id"])

        await asyncio.gather(*(send(*step) for step in plan))
    return acked


def send_until_crash(
    base_url: str,
    plan: list[tuple[Client, str, dict[str, Any]]],
    members: list[Client],
    worker: subprocess.Popen[bytes],
) -> list[str]:
    """Send `plan` by rounds, each once the round before it was decided, until `worker` dies of
    its planned crash (each round is a batch at least); the rest is sent with no worker running.
    Returns the ids of the commands acknowledged."""
    acked: list[str] = []
    rest = plan
    while rest and worker.poll() is None:
        round_acked = asyncio.run(_send_all(base_url, rest[:ROUND]))
        acked += round_acked
        rest = rest[ROUND:]
        _wait_decided_or_exit(members, round_acked, worker)
    assert worker.wait(120) == CRASH_EXIT_CODE, "the worker never reached its crash"
    return acked + asyncio.run(_send_all(base_url, rest))


def _wait_decided_or_exit(
    members: list[Client], acked: list[str], process: subprocess.Popen[bytes]
) -> None:
    """Wait until each of `acked` is decided, or the worker deciding them has exited."""
    deadline = time.monotonic() + 120
    pending = set(acked)
    while pending and process.poll() is None:
        assert time.monotonic() < deadline, f"{len(pending)} commands undecided, worker alive"
        pending = {c for c in pending if _decision(members, c) is None}
        time.sleep(0.2)  # polling for the outcomes, not timing the crash


def test_a_worker_killed_between_events_and_outcome_leaves_one_decision_per_command(
    stack: ChorusStack,
) -> None:
    stack.presence_ttl = 3600.0  # no timer commands: every command in the log is one sent here
    faults = {"CHORUS_FAULTS": CRASH_BETWEEN_EVENTS_AND_OUTCOME}
    stack.wait_worker_ready(stack.start("worker", env=faults))
    victim = stack.children[0]
    assert victim.name == "worker" and victim.process is not None
    commands = stack.start("commands")
    members = [stack.client(commands).sign_up(f"m{i}") for i in range(3)]
    teams = [members[i].new_team(*(m for m in members if m is not members[i])) for i in range(3)]
    plan = []
    for index in range(COMMANDS):
        member = members[index % 3]
        path, body = _command(index, teams[(index // 3) % 3], member)
        plan.append((member, path, body))

    acked = send_until_crash(commands, plan, members, victim.process)

    # As the worker died: CRASH_AT batches in the log, all but the last with their outcomes.
    in_log = {r["causation_id"] for r in read_topic(stack.kafka, stack.topics.events)}
    decided = _decided_outcomes(stack.database_url)
    assert len(in_log) >= CRASH_AT and decided <= in_log
    midway = in_log - decided
    assert midway  # the last batch's commands: their events in the log, no outcome recorded

    stack.start("worker")
    outcomes = _wait_all_decided(members, acked)

    by_command = assert_one_decision_each(stack, acked, outcomes)
    # Recorded once each, from exactly one set of events in the log: those killed mid-way
    # by the new worker's recovery (they were found decided, so not decided again).
    for command_id in midway:
        assert outcomes[command_id]["events"] == by_command[command_id]


def assert_one_decision_each(
    stack: ChorusStack, acked: list[str], outcomes: dict[str, dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Valid chains, and each acknowledged command with exactly one set of events in the log,
    which its outcome names; returns the records by command."""
    events = read_topic(stack.kafka, stack.topics.events)
    assert verify_chain(_dedupe(events)) == []
    by_command: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in events:  # every record as written: a command decided twice would show
        by_command[record["causation_id"]].append(record)
    assert set(by_command) == set(acked)
    for command_id in acked:
        assert outcomes[command_id]["events"] == by_command[command_id]
    assert _decided_outcomes(stack.database_url) == set(acked)
    return by_command


def _decided_outcomes(database_url: str) -> set[str]:
    """Ids of the commands with a decision (not pending) in the outcomes table."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = "SELECT command_id::text FROM command_outcomes WHERE status <> 'pending'"
            return set(conn.execute(text(query)).scalars())
    finally:
        engine.dispose()


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


def _decision(members: list[Client], command_id: str) -> dict[str, Any] | None:
    """The command's outcome once decided, as the first member allowed to read it sees it."""
    for member in members:
        answer = member.get(f"/v1/commands/{command_id}")
        if answer.status_code == 200 and answer.json()["status"] != "pending":
            return dict(answer.json())
    return None


def _wait_all_decided(members: list[Client], acked: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 120
    outcomes: dict[str, dict[str, Any]] = {}
    pending = set(acked)
    while pending and time.monotonic() < deadline:
        for command_id in list(pending):
            decision = _decision(members, command_id)
            if decision is not None:
                outcomes[command_id] = decision
                pending.discard(command_id)
        if pending:
            time.sleep(0.5)  # polling for the outcomes, not timing the crash
    assert not pending, f"{len(pending)} acknowledged commands never decided"
    return outcomes
