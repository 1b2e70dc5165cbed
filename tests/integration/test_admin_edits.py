"""Support edits on the real stack: each has its effect and exactly one audit record, a refused
one changes nothing; a password reset; an erased account's e-mail and name are nowhere in the
database nor on any topic, and `chorus replay verify` (which checks the audit chain) passes."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from confluent_kafka import Producer

from db.engines import make_engine
from db.tables import password_resets
from devstack.database import postgres_bin_dir
from devstack.processes import chorus_argv
from schemas.audit import AUDIT_KEY
from tests.integration.conftest import read_topic
from tests.integration.operators import signed_in_operator
from tests.stack import ChorusStack, Client

PASSWORD = "correct horse battery"


class Audited:
    """An operator's client that checks each edit wrote exactly one audit record (or none)."""

    def __init__(self, ops: httpx.Client) -> None:
        self.ops = ops

    def seqs(self) -> list[int]:
        return [
            r["seq"]
            for r in self.ops.get("/v1/admin/audit", params={"limit": 500}).json()["records"]
        ]

    def edit(self, method: str, path: str, body: Any, status: int = 200) -> dict[str, Any]:
        before = self.seqs()
        answer = self.ops.request(method, f"/v1/admin{path}", json=body)
        assert answer.status_code == status, answer.text
        after = self.seqs()
        if status == 200:
            assert after == [len(before) + 1, *before]
            assert answer.json()["audit"]["seq"] == len(before) + 1
            assert answer.json()["audit"]["reason"] == body["reason"]
        else:
            assert after == before
        result: dict[str, Any] = answer.json()
        return result


def test_each_support_edit_has_its_effect_and_one_audit_record(
    stack: ChorusStack, migrated_database_url: str, kafka_bootstrap: str
) -> None:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands, admin = stack.start("commands"), stack.start("admin")
    queries = stack.start("queries")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    carol = stack.client(commands).sign_up("carol")
    team_id = alice.new_team(bob, carol)
    ops, _ = signed_in_operator(migrated_database_url, admin)
    audited = Audited(ops)
    try:
        _account_update(audited, bob, carol)
        as_carol = _member_probes(commands, queries, team_id, carol)
        for name, probe in as_carol.items():
            assert probe().status_code in (200, 202), name  # and now cached as a member
        _team_edits(audited, team_id, alice, bob, carol, as_carol)
        _password_reset(audited, bob, migrated_database_url)
    finally:
        ops.close()


def _account_update(audited: Audited, bob: Client, carol: Client) -> None:
    path = f"/accounts/{bob.user_id}"
    audited.edit("PATCH", path, {"display_name": "Bobby"}, 422)  # no reason
    audited.edit("PATCH", path, {"reason": "asked"}, 422)  # nothing to change
    audited.edit("PATCH", path, {"reason": "asked", "email": "not-an-email"}, 422)
    audited.edit("PATCH", f"/accounts/{uuid.uuid4()}", {"reason": "r", "display_name": "X"}, 404)
    taken = audited.edit("PATCH", path, {"reason": "r", "email": carol.email.upper()}, 409)
    assert taken["error"]["code"] == "email_taken"
    new_email = f"robert-{uuid.uuid4().hex[:6]}@example.com"
    changed = audited.edit(
        "PATCH", path, {"reason": "ticket 42", "display_name": "Robert", "email": new_email}
    )
    # The record names the fields, never their values (personal data stays out of the log).
    assert changed["audit"]["details"] == {"fields": ["display_name", "email"]}
    assert new_email not in orjson.dumps(changed["audit"]).decode()
    account = audited.ops.get(f"/v1/admin{path}").json()
    assert (account["email"], account["display_name"]) == (new_email, "Robert")
    signin = bob.http.post("/v1/sessions", json={"email": new_email, "password": PASSWORD})
    assert signin.status_code == 201, signin.text
    bob.email, bob.token = new_email, signin.json()["token"]


def _password_reset(audited: Audited, bob: Client, database_url: str) -> None:
    path = f"/accounts/{bob.user_id}/password-reset"
    audited.edit("POST", path, {}, 422)
    audited.edit("POST", f"/accounts/{uuid.uuid4()}/password-reset", {"reason": "r"}, 404)
    started = audited.edit("POST", path, {"reason": "locked out"})
    token = started["reset_token"]
    assert started["reset_path"] == "/v1/password-resets" and started["expires_at"]
    # The old password stops at once, and so do the tokens signed with it (within seconds).
    old = bob.http.post("/v1/sessions", json={"email": bob.email, "password": PASSWORD})
    assert old.status_code == 401
    deadline = time.monotonic() + 5.0
    while bob.get(f"/v1/teams/{uuid.uuid4()}/members").status_code != 401:
        assert time.monotonic() < deadline, "the old token still works"
        time.sleep(0.1)

    new_password = "a brand new passphrase"
    reset = {"token": token, "password": new_password}
    assert (
        bob.http.post("/v1/password-resets", json={**reset, "password": "short"}).status_code == 422
    )
    done = bob.http.post("/v1/password-resets", json=reset)
    assert done.status_code == 200 and done.json() == {"user_id": bob.user_id}, done.text
    again = bob.http.post("/v1/password-resets", json=reset)
    assert again.status_code == 404 and again.json()["error"]["code"] == "unknown_reset_token"
    signin = bob.http.post("/v1/sessions", json={"email": bob.email, "password": new_password})
    assert signin.status_code == 201, signin.text
    bob.token = signin.json()["token"]
    # The revocation reaches a moment past its publication (admin/audit.py), which a token
    # signed this soon after the operator's reset may precede: a later one is good.
    deadline = time.monotonic() + 10.0
    while bob.get(f"/v1/teams/{uuid.uuid4()}/members").status_code == 401:
        assert time.monotonic() < deadline, "a token signed with the new password is refused"
        time.sleep(0.2)
        signin = bob.http.post("/v1/sessions", json={"email": bob.email, "password": new_password})
        bob.token = signin.json()["token"]

    # A token past its expiry is refused, and leaves the password as it is.
    expired = audited.edit("POST", path, {"reason": "again"})["reset_token"]
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(password_resets).values(
                    expires_at=sa.func.now() - sa.text("interval '1 second'")
                )
            )
    finally:
        engine.dispose()
    late = bob.http.post("/v1/password-resets", json={"token": expired, "password": PASSWORD})
    assert late.status_code == 404
    assert (
        bob.http.post("/v1/sessions", json={"email": bob.email, "password": PASSWORD}).status_code
        == 401
    )


def _member_probes(
    commands: str, queries: str, team_id: str, member: Client
) -> dict[str, Callable[[], httpx.Response]]:
    """A command and a read of the team, as `member`."""
    headers = member.headers()
    return {
        "commands": lambda: httpx.post(
            f"{commands}/v1/teams/{team_id}/presence",
            json={"status": "available", "device_id": "phone"},
            headers=headers,
            timeout=30,
        ),
        "queries": lambda: httpx.get(
            f"{queries}/v1/teams/{team_id}/presence", headers=headers, timeout=30
        ),
    }


def _team_edits(
    audited: Audited,
    team_id: str,
    alice: Client,
    bob: Client,
    carol: Client,
    as_carol: dict[str, Callable[[], httpx.Response]],
) -> None:
    team = f"/teams/{team_id}"
    audited.edit("POST", f"{team}/members/{carol.user_id}/remove", {"reason": ""}, 422)
    audited.edit(
        "POST", f"/teams/{uuid.uuid4()}/members/{carol.user_id}/remove", {"reason": "r"}, 404
    )
    audited.edit("POST", f"{team}/members/{uuid.uuid4()}/remove", {"reason": "r"}, 404)
    owner = audited.edit("POST", f"{team}/members/{alice.user_id}/remove", {"reason": "r"}, 409)
    assert owner["error"]["code"] == "is_owner"
    removed = audited.edit("POST", f"{team}/members/{carol.user_id}/remove", {"reason": "left"})
    assert removed["audit"]["target"] == {"team_id": team_id, "user_id": carol.user_id}
    # The services forget a removed member at once, not when their cache of members expires.
    deadline = time.monotonic() + 5.0
    for name, probe in as_carol.items():
        while (answer := probe()).status_code != 403 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer.status_code == 403, (name, answer.text)
    audited.edit("POST", f"{team}/members/{carol.user_id}/remove", {"reason": "r"}, 404)

    audited.edit("POST", f"{team}/owner", {"user_id": carol.user_id, "reason": "r"}, 404)
    audited.edit("POST", f"{team}/owner", {"user_id": "nobody", "reason": "r"}, 404)
    audited.edit("POST", f"{team}/owner", {"user_id": alice.user_id, "reason": "r"}, 409)
    audited.edit("POST", f"{team}/owner", {"user_id": bob.user_id}, 422)
    moved = audited.edit("POST", f"{team}/owner", {"user_id": bob.user_id, "reason": "handover"})
    assert moved["audit"]["details"] == {"previous_owner_id": alice.user_id}
    members = audited.ops.get(f"/v1/admin{team}").json()
    assert members["owner_id"] == bob.user_id
    assert {m["user_id"]: m["role"] for m in members["members"]} == {
        alice.user_id: "member",
        bob.user_id: "owner",
    }
    # The new owner adds members now, the old one no longer does.
    assert alice.post(f"/v1/teams/{team_id}/members", {"email": carol.email}).status_code == 403
    assert bob.post(f"/v1/teams/{team_id}/members", {"email": carol.email}).status_code == 201


def test_an_erased_account_is_nowhere_in_the_database_or_the_topics_and_the_log_verifies(
    stack: ChorusStack, migrated_database_url: str, kafka_bootstrap: str
) -> None:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands, admin = stack.start("commands"), stack.start("admin")
    alice = stack.client(commands).sign_up("alice")
    name = f"zed{uuid.uuid4().hex[:10]}"  # lower case, as the stored e-mail is
    zed = stack.client(commands).sign_up(name)
    team_id = alice.new_team(zed)
    own_team = zed.new_team(alice)
    for who in (alice, zed):  # events that name the erased account, by id
        done = who.post(
            f"/v1/teams/{team_id}/presence",
            {"status": "available", "device_id": "d"},
            Prefer="wait=10",
        )
        assert done.status_code == 200, done.text
    wrong = zed.http.post("/v1/sessions", json={"email": zed.email, "password": "wrong one"})
    assert wrong.status_code == 401  # a throttle row keyed by the e-mail
    assert zed.email in _dump(migrated_database_url) and name in _dump(migrated_database_url)
    ops, _ = signed_in_operator(migrated_database_url, admin)
    audited = Audited(ops)
    try:
        audited.edit("POST", f"/accounts/{zed.user_id}/erase", {"reason": " "}, 422)
        owns = audited.edit("POST", f"/accounts/{zed.user_id}/erase", {"reason": "gdpr"}, 409)
        assert owns["error"]["code"] == "owns_team" and own_team in owns["error"]["message"]
        handed = {"user_id": alice.user_id, "reason": "owner leaves"}
        audited.edit("POST", f"/teams/{own_team}/owner", handed)
        audited.edit("POST", f"/accounts/{zed.user_id}/erase", {"reason": "gdpr request"})
        audited.edit("POST", f"/accounts/{zed.user_id}/erase", {"reason": "again"}, 409)
        audited.edit("POST", f"/accounts/{zed.user_id}/enable", {"reason": "no"}, 409)
    finally:
        ops.close()

    dump = _dump(migrated_database_url)
    assert zed.user_id in dump  # the id stays: the events name it
    assert zed.email not in dump and name not in dump
    for topic in (stack.topics.events, stack.topics.commands, stack.topics.audit):
        text = orjson.dumps(
            read_topic(
                kafka_bootstrap,
                topic,
                partitions=stack.partitions if topic != stack.topics.audit else 1,
            )
        ).decode()
        assert zed.email not in text and name not in text, topic
    events = orjson.dumps(
        read_topic(kafka_bootstrap, stack.topics.events, partitions=stack.partitions)
    ).decode()
    assert zed.user_id in events
    signin = zed.http.post("/v1/sessions", json={"email": zed.email, "password": PASSWORD})
    assert signin.status_code == 401

    verified = _replay_verify(stack)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "audit log: 2 records" in verified.stdout + verified.stderr
    # The check can fail: a record appended by hand does not link to the chain.
    forged = {"seq": 3, "action": "account.enable", "prev_hash": "0" * 64, "hash": "1" * 64}
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(stack.topics.audit, key=AUDIT_KEY, value=orjson.dumps(forged))
    assert producer.flush(10) == 0
    tampered = _replay_verify(stack)
    assert tampered.returncode == 1
    assert "audit partition 0 offset 2: seq 3: bad hash" in tampered.stdout


def _dump(database_url: str) -> str:
    url = sa.make_url(database_url).set(drivername="postgresql")
    dumped = subprocess.run(
        [
            str(postgres_bin_dir() / "pg_dump"),
            "--dbname",
            url.render_as_string(hide_password=False),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dumped.stdout


def _replay_verify(stack: ChorusStack) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chorus_argv("replay", "verify"),
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
