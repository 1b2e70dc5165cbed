"""Read models for integration tests: what the tables hold, what the log says they should, and
a burst of client commands that changes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa

from db.engines import make_engine
from db.tables import READ_MODELS, command_outcomes, rm_calls, rm_changes, rm_members, rm_positions
from streams.projection import TeamView, changes_horizon, fold_views, project, record_key
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client


@dataclass(frozen=True)
class ReadModels:
    """The four read-model tables as comparable dicts."""

    positions: dict[str, int]
    members: dict[tuple[str, str], Any]
    calls: dict[str, tuple[str, str, str, Any]]  # call_id -> (team_id, state, started_at, body)
    changes: dict[tuple[str, int], tuple[str, Any]]  # (team_id, seq) -> (kind, data)


def _decided(database_url: str, command_ids: set[str]) -> bool:
    """Whether each of these commands has a decided (not pending) outcome."""
    if not command_ids:
        return True
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(
                command_outcomes.c.command_id.in_(command_ids),
                command_outcomes.c.status != "pending",
            )
            return conn.execute(query).scalar_one() == len(command_ids)
    finally:
        engine.dispose()


def stored(database_url: str) -> ReadModels:
    """What the live tables hold now."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = {table: conn.execute(sa.select(table)).all() for table in READ_MODELS}
    finally:
        engine.dispose()
    return ReadModels(
        positions={str(r.team_id): r.seq for r in rows[rm_positions]},
        members={(str(r.team_id), str(r.user_id)): r.body for r in rows[rm_members]},
        calls={
            str(r.call_id): (str(r.team_id), r.state, r.started_at, r.body) for r in rows[rm_calls]
        },
        changes={(str(r.team_id), r.seq): (r.kind, r.data) for r in rows[rm_changes]},
    )


def expected(records: list[dict[str, Any]]) -> ReadModels:
    """The read models rebuilt from the log: `fold_views`, and the changes of stepwise
    `project` (a record read twice gives its change once), trimmed as the projector trims."""
    views = fold_views(records)
    stepwise: dict[str, TeamView] = {}
    changes: dict[tuple[str, int], tuple[str, Any]] = {}
    for record in records:
        key = record_key(record)
        assert key is not None
        view = stepwise.get(key[0]) or TeamView(team_id=key[0])
        stepwise[key[0]], made = project(view, record)
        changes.update({(key[0], c.seq): (c.kind, c.data) for c in made})
    assert stepwise == views
    return ReadModels(
        positions={team: view.seq for team, view in views.items()},
        members={(t, u): m for t, view in views.items() for u, m in view.members.items()},
        calls={
            c: (t, call["state"], call["started_at"], call)
            for t, view in views.items()
            for c, call in view.calls.items()
        },
        changes={
            key: change
            for key, change in changes.items()
            if key[1] > changes_horizon(views[key[0]].seq)
        },
    )


def settled(stack: ChorusStack, acked: list[str], timeout: float = 120.0) -> ReadModels:
    """Once every acknowledged command is decided and projected: the models the log implies,
    after checking that the tables hold exactly them."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_topic(stack.kafka, stack.topics.events)
        want = expected(records)
        # A heartbeat that changes nothing seen has its outcome, and no events, to show for it.
        in_log = {r["causation_id"] for r in records}
        decided = _decided(stack.database_url, set(acked) - in_log)
        if decided and stored(stack.database_url).positions == want.positions:
            break
        assert time.monotonic() < deadline, "the read models never caught up with the log"
        time.sleep(0.5)
    got = stored(stack.database_url)
    assert got.positions == want.positions
    assert got.members == want.members
    assert got.calls == want.calls
    assert got.changes == want.changes
    return got


@dataclass
class Teams:
    """Three members, three teams they all belong to, and one call started in each."""

    members: list[Client]
    teams: list[str]
    calls: list[str]


def three_teams(stack: ChorusStack, commands_url: str) -> Teams:
    members = [stack.client(commands_url).sign_up(f"m{i}") for i in range(3)]
    teams = [members[i].new_team(*(m for m in members if m is not members[i])) for i in range(3)]
    calls = []
    for owner, team in zip(members, teams, strict=True):
        answer = owner.post(f"/v1/teams/{team}/calls", {"invitees": [], "topic": "standup"})
        assert answer.status_code == 202, answer.text
        calls.append(answer.json()["call_id"])
    return Teams(members, teams, calls)


def plan(setup: Teams, count: int, start: int = 0) -> list[tuple[Client, str, dict[str, Any]]]:
    """`count` commands of every kind, spread over the members and teams."""
    steps = []
    for index in range(start, start + count):
        team = (index // 3) % 3
        path, body = _step(index, setup.teams[team], setup.calls[team])
        steps.append((setup.members[index % 3], path, body))
    return steps


def _step(index: int, team: str, call: str) -> tuple[str, dict[str, Any]]:
    kind = index % 7
    if kind == 0:
        status = ("available", "busy", "away", "offline")[index % 4]
        return f"/v1/teams/{team}/presence", {"status": status, "device_id": f"d{index % 2}"}
    if kind == 1:
        return f"/v1/teams/{team}/presence/heartbeat", {"device_id": "d1"}
    if kind in (2, 5):
        return f"/v1/calls/{call}/join", {}
    if kind == 3:
        return f"/v1/calls/{call}/mute", {"muted": index % 2 == 0}
    if kind == 4:
        return f"/v1/calls/{call}/leave", {}
    return f"/v1/teams/{team}/calls", {"invitees": [], "topic": "more"}


def send(
    base_url: str,
    steps: list[tuple[Client, str, dict[str, Any]]],
    on_acked: Callable[[int], None] = lambda count: None,
    concurrency: int = 8,
) -> list[str]:
    """Send the commands, `concurrency` at a time; the ids of those acknowledged (all)."""

    async def run() -> list[str]:
        acked: list[str] = []
        semaphore = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

            async def one(member: Client, path: str, body: dict[str, Any]) -> None:
                async with semaphore:
                    answer = await client.post(path, json=body, headers=member.headers())
                assert answer.status_code == 202, answer.text
                acked.append(answer.json()["command_id"])
                on_acked(len(acked))

            await asyncio.gather(*(one(*step) for step in steps))
        return acked

    return asyncio.run(run())
