"""Operators inspect a real stack: `chorus admin` and its `add-operator` as processes, the worker
and the commands service making the accounts, teams, presence, calls and outcomes they read."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.integration.operators import operator_client
from tests.stack import ChorusStack, Client


def _eventually(read: Any, ready: Any, timeout: float = 30.0) -> Any:
    """`read()` once `ready(answer)` holds (the read models follow the log a little later)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = read()
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_an_operator_inspects_accounts_teams_presence_calls_and_commands(
    stack: ChorusStack,
) -> None:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands = stack.start("commands")
    admin_url = stack.start("admin")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    presence = alice.post(
        f"/v1/teams/{team_id}/presence",
        {"status": "available", "device_id": "laptop"},
        Prefer="wait=10",
    )
    call = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": [bob.user_id]}, Prefer="wait=10")
    assert presence.status_code == 200 and call.status_code == 200, (presence.text, call.text)
    ops = operator_client(stack, admin_url)
    try:
        _accounts(ops, alice, team_id)
        _team(ops, team_id, alice, bob)
        _read_models(ops, team_id, alice, call.json()["call_id"])
        _command(ops, presence.json()["command_id"], team_id, alice)
        # An operator's token names no user: the public API refuses it, and a user's token is
        # no operator's.
        as_user = httpx.post(
            f"{commands}/v1/teams", json={"name": "Ops"}, headers=ops.headers, timeout=30
        )
        assert as_user.status_code == 403, as_user.text
        as_operator = httpx.get(f"{admin_url}/v1/admin/teams/{team_id}", headers=alice.headers())
        assert as_operator.status_code == 403
    finally:
        ops.close()


def _accounts(ops: httpx.Client, alice: Client, team_id: str) -> None:
    by_email = ops.get("/v1/admin/accounts", params={"email": alice.email.upper()})
    assert by_email.status_code == 200, by_email.text
    body = by_email.json()
    assert (body["user_id"], body["email"], body["display_name"]) == (
        alice.user_id,
        alice.email,
        "alice",
    )
    assert [(t["team_id"], t["role"], t["owner_id"]) for t in body["teams"]] == [
        (team_id, "owner", alice.user_id)
    ]
    assert ops.get(f"/v1/admin/accounts/{alice.user_id}").json() == body
    unknown = ops.get("/v1/admin/accounts", params={"email": "nobody@example.com"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_account"
    assert ops.get(f"/v1/admin/accounts/{uuid.uuid4()}").status_code == 404
    assert ops.get("/v1/admin/accounts").status_code == 422


def _team(ops: httpx.Client, team_id: str, alice: Client, bob: Client) -> None:
    team = ops.get(f"/v1/admin/teams/{team_id}")
    assert team.status_code == 200, team.text
    assert team.json()["owner_id"] == alice.user_id
    members = {m["user_id"]: (m["email"], m["role"]) for m in team.json()["members"]}
    assert members == {
        alice.user_id: (alice.email, "owner"),
        bob.user_id: (bob.email, "member"),
    }
    assert ops.get(f"/v1/admin/teams/{uuid.uuid4()}").status_code == 404


def _read_models(ops: httpx.Client, team_id: str, alice: Client, call_id: str) -> None:
    presence = _eventually(
        lambda: ops.get(f"/v1/admin/teams/{team_id}/presence").json(),
        lambda body: any(m.get("status") == "available" for m in body.get("members", [])),
    )
    statuses = {m["user_id"]: m["status"] for m in presence["members"]}
    assert statuses[alice.user_id] == "available", presence
    calls = _eventually(
        lambda: ops.get(f"/v1/admin/teams/{team_id}/calls", params={"state": "active"}).json(),
        lambda body: bool(body.get("calls")),
    )
    assert [c["call_id"] for c in calls["calls"]] == [call_id], calls
    assert int(calls["position"]) >= 2
    bad_state = ops.get(f"/v1/admin/teams/{team_id}/calls", params={"state": "maybe"})
    assert bad_state.status_code == 422
    assert ops.get(f"/v1/admin/teams/{uuid.uuid4()}/presence").status_code == 404


def _command(ops: httpx.Client, command_id: str, team_id: str, alice: Client) -> None:
    outcome = ops.get(f"/v1/admin/commands/{command_id}")
    assert outcome.status_code == 200, outcome.text
    body = outcome.json()
    assert (body["status"], body["team_id"], body["actor"]) == ("accepted", team_id, alice.user_id)
    assert [event["type"] for event in body["events"]] == ["presence.changed"]
    assert ops.get(f"/v1/admin/commands/{uuid.uuid4()}").status_code == 404
