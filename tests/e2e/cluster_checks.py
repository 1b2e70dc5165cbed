"""What the cluster test checks once the crashes are over: each command decided once, its one
event in the log, no key with two effects, and the log's chains valid."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from schemas.topics import Topics
from tests.e2e.cluster_load import DEADLINE, Accepted
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack


class Undecided(AssertionError):
    """Commands still not decided at the deadline, with what GET last said of each."""

    def __init__(self, last: dict[str, tuple[Accepted, int, str]]) -> None:
        super().__init__(f"{len(last)} commands still pending")
        self.last = last  # by command id: the command, its GET's status code, its status


def outcomes_of(
    url: str, accepted: list[Accepted], timeout: float = DEADLINE
) -> dict[str, tuple[float, dict[str, Any]]]:
    """Wait until every command is decided; when each was first seen decided (monotonic), and
    its outcome. Each must be accepted with one event (a presence.set always emits one).
    Undecided after `timeout` seconds: raises Undecided."""
    decided: dict[str, float] = {}
    bodies: dict[str, dict[str, Any]] = {}
    by_id = {a.command_id: a for a in accepted}
    last: dict[str, tuple[Accepted, int, str]] = {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=url, timeout=10) as http:

        def look(command: Accepted) -> tuple[str, dict[str, Any]]:
            headers = {"Authorization": f"Bearer {command.member.token}"}
            answer = http.get(f"/v1/commands/{command.command_id}", headers=headers)
            if answer.status_code == 404:  # for a moment: pending is written off the request
                body = {"status": "pending"}
            else:
                assert answer.status_code == 200, answer.text
                body = answer.json()
            last[command.command_id] = (command, answer.status_code, body["status"])
            return command.command_id, body

        with ThreadPoolExecutor(4) as pool:
            while len(decided) < len(by_id):
                if time.monotonic() > deadline:
                    raise Undecided({cid: last[cid] for cid in by_id if cid not in decided})
                waiting = [a for cid, a in by_id.items() if cid not in decided]
                for command_id, body in pool.map(look, waiting):
                    if body["status"] != "pending":
                        decided[command_id] = time.monotonic()
                        bodies[command_id] = body
                if len(decided) < len(by_id):
                    time.sleep(0.05)
    for command_id, body in bodies.items():
        assert body["status"] == "accepted", body
        assert [e["type"] for e in body["events"]] == ["presence.changed"], body
        assert body["events"][0]["causation_id"] == command_id, body
    return {command_id: (decided[command_id], bodies[command_id]) for command_id in decided}


def check_every_command_once(
    bootstrap: str, topics: Topics, partitions: int, url: str, accepted: list[Accepted]
) -> None:
    """Every 202 has a decided outcome and its one event in the log; no key took effect twice."""
    assert len({a.key for a in accepted}) == len(accepted), "a key was accepted twice"
    ids = {a.command_id for a in accepted}
    assert len(ids) == len(accepted), "two keys were given one command"
    try:
        outcomes = outcomes_of(url, accepted)
    except Undecided as undecided:
        raise AssertionError(explain(undecided, bootstrap, topics, partitions)) from undecided
    events = unique_events(read_topic(bootstrap, topics.events, partitions))
    logged = {event["event_id"] for event in events}
    for _, body in outcomes.values():
        assert {e["event_id"] for e in body["events"]} <= logged, f"not in the log: {body}"
    effects: dict[str, list[int]] = defaultdict(list)
    for event in events:
        effects[event["causation_id"]].append(event["seq"])
    lost = ids - set(effects)
    assert not lost, f"{len(lost)} acknowledged commands have no event: {sorted(lost)[:5]}"
    doubled = {cid: seqs for cid, seqs in effects.items() if len(seqs) > 1}
    assert not doubled, f"commands with more than one effect: {list(doubled.items())[:5]}"
    # Every effect in the log is one a client was answered 202 for: none from a lost retry.
    unexplained = set(effects) - ids
    assert not unexplained, f"effects no 202 accounts for: {sorted(unexplained)[:5]}"


def explain(undecided: Undecided, bootstrap: str, topics: Topics, partitions: int) -> str:
    """What is known of commands left undecided: their partition, when they were sent, what
    GET said, and whether the log has their events (decided, outcome not recorded) or not."""
    logged = defaultdict(list)
    for record in read_topic(bootstrap, topics.events, partitions):
        if record is not None and record["causation_id"] in undecided.last:
            logged[record["causation_id"]].append(record["seq"])
    now = time.monotonic()
    lines = [str(undecided)]
    for command_id, (command, code, status) in sorted(
        undecided.last.items(), key=lambda item: item[1][0].sent_at
    ):
        lines.append(
            f"  {command_id}: partition {command.partition}, sent {now - command.sent_at:.1f} s "
            f"ago ({command.attempts} attempts), GET {code} {status}, "
            f"events in the log at seq {logged.get(command_id, 'none')}"
        )
    return "\n".join(lines)


def unique_events(records: list[Any]) -> list[dict[str, Any]]:
    """The log's events once each: a record written twice after a crash is one event."""
    by_position: dict[tuple[str, int], dict[str, Any]] = {}
    for record in records:
        if record is None:
            continue
        position = (record["team_id"], record["seq"])
        earlier = by_position.setdefault(position, record)
        assert earlier == record, f"two different records at {position}"
    return list(by_position.values())


def verify_replay(stack: ChorusStack, timeout: float = DEADLINE) -> None:
    """`chorus replay verify` passes on the stack's events."""
    verified = subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", "verify"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
