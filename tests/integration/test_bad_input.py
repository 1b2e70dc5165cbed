"""Hundreds of malformed or hostile requests: each a clear 4xx, none a 5xx, nothing written."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.throttle import BLOCK_AFTER_FAILURES
from auth.tokens import Identity, encode_token, new_identity
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client

EXAMPLES = 260

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)

VALID_BODIES: dict[str, dict[str, Any]] = {
    "presence": {"status": "available", "device_id": "d1"},
    "heartbeat": {"device_id": "d1"},
    "calls": {"invitees": []},
    "join": {},
    "mute": {"muted": True},
    "members": {"email": "nobody@example.com"},
    "teams": {"name": "x"},
    "accounts": {"email": "a@example.com", "password": "long enough", "display_name": "A"},
}


def _paths(team_id: str, other_team: str, call_id: str) -> dict[str, str]:
    return {
        "presence": f"/v1/teams/{team_id}/presence",
        "heartbeat": f"/v1/teams/{team_id}/presence/heartbeat",
        "calls": f"/v1/teams/{team_id}/calls",
        "join": f"/v1/calls/{call_id}/join",
        "mute": f"/v1/calls/{call_id}/mute",
        "members": f"/v1/teams/{other_team}/members",
        "teams": "/v1/teams",
        "accounts": "/v1/accounts",
    }


@st.composite
def defects(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    """(kind, defect, headers, body) with at least one defect that must make it a 4xx."""
    kind = draw(st.sampled_from(sorted(VALID_BODIES)))
    body = dict(VALID_BODIES[kind])
    headers = {"content-type": "application/json"}
    defect = draw(
        st.sampled_from(
            [
                "malformed_json",
                "wrong_content_type",
                "too_large",
                "unknown_field",
                "wrong_type",
                "random_json",
                "bad_token",
                "expired_token",
                "other_team",
            ]
        )
    )
    raw = json.dumps(body).encode()
    if defect == "malformed_json":
        raw = draw(st.binary(max_size=40)).replace(b"{", b"") + b"{"
    elif defect == "wrong_content_type":
        headers["content-type"] = draw(st.sampled_from(["text/plain", "application/xml", ""]))
    elif defect == "too_large":
        raw = json.dumps({**body, "padding": "x" * (65 * 1024)}).encode()
    elif defect == "unknown_field":
        raw = json.dumps(
            {**body, draw(st.sampled_from(["colour", "admin", "__proto__"])): 1}
        ).encode()
    elif defect == "wrong_type":
        # No field of any body takes a number or a list of numbers.
        wrong = st.integers() | st.lists(st.integers(), min_size=1, max_size=3)
        raw = json.dumps({key: draw(wrong) for key in body} or [1]).encode()
    elif defect == "random_json":
        value = draw(json_values.filter(lambda v: v != body and v != {}))
        raw = json.dumps(value).encode()
    return kind, defect, headers, raw


def test_hostile_requests_get_4xx_and_change_nothing(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    alice = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    outsider = stack.client(commands).sign_up("eve")
    other_team = outsider.new_team()
    expired = encode_token(stack.secret, Identity(user_id=str(alice.user_id), expires_at=1))
    paths = _paths(team_id, other_team, str(uuid.uuid4()))
    statuses: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(defects())
    def send(case: tuple[str, str, dict[str, str], bytes]) -> None:
        kind, defect, headers, raw = case
        token = {"bad_token": "not-a-token", "expired_token": expired}.get(defect, alice.token)
        headers = {**headers, "Authorization": f"Bearer {token}"}
        path = paths["members"] if defect == "other_team" else paths[kind]
        if kind == "accounts" and defect in {"bad_token", "expired_token", "other_team"}:
            raw = b"{"  # accounts need no token: make the defect the body instead
        answer = alice.http.post(path, content=raw, headers=headers)
        statuses.append(answer.status_code)
        assert 400 <= answer.status_code < 500, (kind, defect, answer.status_code, answer.text)
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"]["code"]

    send()

    assert len(statuses) >= 200
    assert read_topic(stack.kafka, stack.topics.commands) == []
    assert read_topic(stack.kafka, stack.topics.events) == []
    members = alice.get(f"/v1/teams/{team_id}/members").json()["members"]
    assert [m["user_id"] for m in members] == [alice.user_id]


def test_openapi_describes_every_command(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    document = httpx.get(f"{commands}/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    for path in ("/v1/teams/{team_id}/calls", "/v1/calls/{call_id}/mute", "/v1/sessions"):
        assert path in document["paths"]
    schemas = document["components"]["schemas"]
    assert schemas["StartCallBody"]["additionalProperties"] is False


def test_sign_in_failures_are_slowed_then_refused(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    alice: Client = stack.client(commands).sign_up("alice")
    codes = []
    for _ in range(11):
        answer = alice.http.post(
            "/v1/sessions", json={"email": alice.email, "password": "wrong password"}
        )
        codes.append(answer.status_code)
    assert codes[:10] == [401] * 10
    assert codes[10] == 429
    assert "Retry-After" in answer.headers


def test_parallel_wrong_passwords_check_at_most_the_allowed_number(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    alice: Client = stack.client(commands).sign_up("alice")
    # The services trust X-Forwarded-For from a local proxy, as from 127.0.0.1 here.
    stranger = {"X-Forwarded-For": "203.0.113.7"}

    async def attempt(password: str, headers: dict[str, str]) -> int:
        async with httpx.AsyncClient(base_url=commands, timeout=60) as client:
            answer = await client.post(
                "/v1/sessions", json={"email": alice.email, "password": password}, headers=headers
            )
            return answer.status_code

    async def storm() -> list[int]:
        wrong = (attempt("wrong password", stranger) for _ in range(100))
        return list(await asyncio.gather(*wrong))

    codes = asyncio.run(storm())

    # Each 401 is a password checked; the count is taken before the check, so no more pass.
    assert codes.count(401) == BLOCK_AFTER_FAILURES, codes
    assert codes.count(429) == 100 - BLOCK_AFTER_FAILURES
    # The stranger's address is throttled, even with the right password...
    assert asyncio.run(attempt("correct horse battery", stranger)) == 429
    # ...but the owner, signing in from elsewhere, is not locked out.
    owner = {"X-Forwarded-For": "198.51.100.1"}
    assert asyncio.run(attempt("correct horse battery", owner)) == 201


def test_text_the_tables_cannot_hold_is_a_422_naming_the_field(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    alice: Client = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    account = {"email": "b@example.com", "password": "long enough", "display_name": "B"}
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("accounts", "/v1/accounts", {**account, "email": "b\u0000@example.com"}, "email"),
        ("accounts", "/v1/accounts", {**account, "display_name": "B\u0000"}, "display_name"),
        ("accounts", "/v1/accounts", {**account, "display_name": "B\u0007"}, "display_name"),
        ("accounts", "/v1/accounts", {**account, "password": "long\u0000enough"}, "password"),
        ("sessions", "/v1/sessions", {"email": "a\u0000@example.com", "password": "x"}, "email"),
        ("teams", "/v1/teams", {"name": "T\u0000"}, "name"),
        ("teams", "/v1/teams", {"name": "T\u009b"}, "name"),
        ("calls", f"/v1/teams/{team_id}/calls", {"invitees": [], "topic": "a\u0000"}, "topic"),
        ("calls", f"/v1/teams/{team_id}/calls", {"invitees": ["\u0000"]}, "invitees"),
        ("calls", f"/v1/teams/{team_id}/calls", {"invitees": [], "topic": "x" * 201}, "topic"),
        ("presence", f"/v1/teams/{team_id}/presence", {"status": "busy", "device_id": "\u0000"},
         "device_id"),
        ("heartbeat", f"/v1/teams/{team_id}/presence/heartbeat", {"device_id": "d\n"},
         "device_id"),
        ("members", f"/v1/teams/{team_id}/members", {"email": "\u0000@x.io"}, "email"),
    ]  # fmt: skip
    for kind, path, body, field in cases:
        answer = alice.http.post(path, json=body, headers=alice.headers())
        assert answer.status_code == 422, (kind, body, answer.text)
        assert f"$.{field}" in answer.json()["error"]["message"], (kind, answer.text)
    # A lone surrogate cannot be UTF-8: the JSON holding one is malformed (400).
    raw = b'{"invitees": [], "topic": "\\ud800"}'
    answer = alice.http.post(
        f"/v1/teams/{team_id}/calls",
        content=raw,
        headers=alice.headers(**{"content-type": "application/json"}),
    )
    assert answer.status_code == 400, answer.text
    # An Idempotency-Key with a control character is refused (by the HTTP parser, or by the
    # service for those the parser lets through) before anything is claimed.
    for key in ("k\u0001", "k\u007f"):
        answer = alice.post(
            f"/v1/teams/{team_id}/calls", {"invitees": []}, **{"Idempotency-Key": key}
        )
        assert answer.status_code in (400, 422), (key, answer.text)

    assert read_topic(stack.kafka, stack.topics.commands) == []
    members = alice.get(f"/v1/teams/{team_id}/members").json()["members"]
    assert [m["display_name"] for m in members] == ["alice"]


def test_a_signed_token_of_a_user_who_does_not_exist_is_a_401(stack: ChorusStack) -> None:
    commands = stack.start("commands")
    for subject in (str(uuid.uuid4()), "not-a-uuid", "\u0000"):
        token = encode_token(stack.secret, new_identity(subject, 600))
        answer = httpx.post(
            f"{commands}/v1/teams",
            json={"name": "T"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert answer.status_code == 401, (subject, answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
