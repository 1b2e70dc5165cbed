"""Disable and enable on the real stack: the disabled user's tokens are refused by every service
within seconds (a revocation each service reads from Kafka), each edit is one audit record, on
the audit topic too, and a refused edit changes nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import httpx

from schemas.audit import verify_audit
from tests.integration.conftest import read_topic
from tests.integration.operators import signed_in_operator
from tests.stack import ChorusStack, Client

PASSWORD = "correct horse battery"
Probe = Callable[[str], httpx.Response]


def _probes(commands: str, queries: str, media: str, team_id: str) -> dict[str, Probe]:
    """One authenticated request per service, given a user's token."""

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    return {
        "commands": lambda token: httpx.post(
            f"{commands}/v1/teams/{team_id}/presence",
            json={"status": "available", "device_id": "laptop"},
            headers=auth(token),
            timeout=30,
        ),
        "queries": lambda token: httpx.get(
            f"{queries}/v1/teams/{team_id}/presence", headers=auth(token), timeout=30
        ),
        # No such room: a token that gets past the guard is answered 404, a revoked one 401.
        "media": lambda token: httpx.post(
            f"{media}/v1/rooms/{uuid.uuid4()}/offer",
            json={"sdp": "v=0", "type": "offer"},
            headers=auth(token),
            timeout=30,
        ),
    }


class _LiveStream:
    """A live query read in a thread until the server ends it."""

    def __init__(self, queries: str, team_id: str, token: str) -> None:
        self.ended = threading.Event()
        self.opened = threading.Event()
        self._response: httpx.Response | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        url = f"{queries}/v1/teams/{team_id}/live"
        self._thread = threading.Thread(target=self._read, args=(url, token), daemon=True)
        self._thread.start()
        assert self.opened.wait(30), "the live stream did not open"

    def _read(self, url: str, token: str) -> None:
        try:
            with self._client.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as r:
                self._response = r
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("event: snapshot"):
                        self.opened.set()
        except httpx.HTTPError:
            pass  # closed by close() below
        finally:
            self.ended.set()

    def close(self) -> None:
        if self._response is not None and not self.ended.is_set():
            self._response.close()
        self._thread.join(30)
        self._client.close()


def _until(probe: Probe, token: str, refused: bool, deadline: float) -> httpx.Response:
    """The probe's answer once it is (or is not) a 401, or the last one at the deadline."""
    while True:
        answer = probe(token)
        if (answer.status_code == 401) == refused or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_a_disabled_user_is_refused_everywhere_within_seconds_and_enabled_again(
    stack: ChorusStack, migrated_database_url: str, kafka_bootstrap: str
) -> None:
    worker = stack.start("worker")
    stack.wait_worker_ready(worker)
    commands, queries = stack.start("commands"), stack.start("queries")
    media, admin = stack.start("media"), stack.start("admin")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    probes = _probes(commands, queries, media, team_id)
    assert bob.token is not None and alice.token is not None
    for name, probe in probes.items():
        assert probe(bob.token).status_code != 401, name
    ops, operator_id = signed_in_operator(migrated_database_url, admin)
    try:
        _refused_edits_change_nothing(ops, bob, probes)
        streams = {
            who.email: _LiveStream(queries, team_id, token)
            for who, token in ((bob, bob.token), (alice, alice.token))
        }

        disabled = ops.post(f"/v1/admin/accounts/{bob.user_id}/disable", json={"reason": "abuse"})
        assert disabled.status_code == 200, disabled.text
        deadline = time.monotonic() + 5.0
        for name, probe in probes.items():
            answer = _until(probe, bob.token, refused=True, deadline=deadline)
            assert answer.status_code == 401, (name, answer.text)
            assert "revoked" in answer.json()["error"]["message"]
            assert probe(alice.token).status_code != 401, name  # nobody else's
        # A live stream opened before outlives no revocation: it is cut off, and its client's
        # reconnection (with the revoked token) is refused like any request.
        assert streams[bob.email].ended.wait(max(deadline - time.monotonic(), 0.1))
        assert not streams[alice.email].ended.is_set()
        for stream in streams.values():
            stream.close()
        signin = bob.http.post("/v1/sessions", json={"email": bob.email, "password": PASSWORD})
        assert signin.status_code == 403 and signin.json()["error"]["code"] == "account_disabled"
        shown = ops.get(f"/v1/admin/accounts/{bob.user_id}").json()
        assert shown["disabled"] is True and shown["disabled_at"] is not None
        again = ops.post(f"/v1/admin/accounts/{bob.user_id}/disable", json={"reason": "twice"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "already_disabled"

        enabled = ops.post(f"/v1/admin/accounts/{bob.user_id}/enable", json={"reason": "appeal"})
        assert enabled.status_code == 200, enabled.text
        assert ops.get(f"/v1/admin/accounts/{bob.user_id}").json()["disabled"] is False
        signin = bob.http.post("/v1/sessions", json={"email": bob.email, "password": PASSWORD})
        assert signin.status_code == 201, signin.text
        fresh = signin.json()["token"]
        # A revocation reaches a moment past its publication (admin/audit.py): a new token
        # signed within it is refused until then.
        deadline = time.monotonic() + 10.0
        for name, probe in probes.items():
            assert _until(probe, fresh, refused=False, deadline=deadline).status_code != 401, name

        _audit_log(ops, operator_id, bob, stack, kafka_bootstrap)
    finally:
        ops.close()


def _refused_edits_change_nothing(ops: httpx.Client, bob: Client, probes: dict[str, Probe]) -> None:
    path = f"/v1/admin/accounts/{bob.user_id}/disable"
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "x", "extra": 1}):
        refused = ops.post(path, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["error"]["code"] == "invalid_body"
    assert (
        ops.post(path, content=b"{", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    missing = ops.post(f"/v1/admin/accounts/{uuid.uuid4()}/disable", json={"reason": "r"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_account"
    not_disabled = ops.post(f"/v1/admin/accounts/{bob.user_id}/enable", json={"reason": "r"})
    assert not_disabled.status_code == 409
    assert ops.get("/v1/admin/audit").json() == {"records": [], "next_before": None}
    assert bob.token is not None
    assert all(probe(bob.token).status_code != 401 for probe in probes.values())


def _audit_log(
    ops: httpx.Client, operator_id: str, bob: Client, stack: ChorusStack, kafka_bootstrap: str
) -> None:
    listed = ops.get("/v1/admin/audit").json()
    records = listed["records"]
    assert [(r["seq"], r["action"], r["reason"]) for r in records] == [
        (2, "account.enable", "appeal"),
        (1, "account.disable", "abuse"),
    ]
    assert all(r["chain"] == "ok" and r["published"] for r in records)
    assert all(r["operator_id"] == operator_id for r in records)
    assert all(r["target"] == {"user_id": bob.user_id} for r in records)
    assert records[0]["prev_hash"] == records[1]["hash"]
    page = ops.get("/v1/admin/audit", params={"limit": 1}).json()
    assert [r["seq"] for r in page["records"]] == [2] and page["next_before"] == 2
    older = ops.get("/v1/admin/audit", params={"limit": 1, "before": 2}).json()
    assert [r["seq"] for r in older["records"]] == [1] and older["next_before"] is None
    for bad in ({"limit": 0}, {"limit": 501}, {"before": "x"}):
        assert ops.get("/v1/admin/audit", params=bad).status_code == 422
    # The topic holds the same records (published before the edits answered), chained.
    on_topic = read_topic(kafka_bootstrap, stack.topics.audit, partitions=1)
    stored = [{k: v for k, v in r.items() if k not in ("chain", "published")} for r in records]
    assert on_topic == stored[::-1]
    assert verify_audit(on_topic) == []
    revocations = read_topic(kafka_bootstrap, stack.topics.revocations, partitions=1)
    assert [r["user_id"] for r in revocations] == [bob.user_id]
