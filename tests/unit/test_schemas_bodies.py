"""HTTP request bodies: strict, with errors that name the field."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from schemas.bodies import (
    Credentials,
    EndBody,
    HeartbeatBody,
    InvalidBody,
    JoinBody,
    LeaveBody,
    MalformedBody,
    MuteBody,
    NewAccount,
    NewMember,
    NewTeam,
    SetPresenceBody,
    StartCallBody,
    decode_body,
)


def test_valid_bodies_decode() -> None:
    assert decode_body(SetPresenceBody, b'{"status":"busy","device_id":"d1"}') == SetPresenceBody(
        status="busy", device_id="d1"
    )
    with_region = b'{"status":"busy","device_id":"d1","region":"eu-west"}'
    assert decode_body(SetPresenceBody, with_region).region == "eu-west"
    assert decode_body(HeartbeatBody, b'{"device_id":"d1"}') == HeartbeatBody(device_id="d1")
    assert decode_body(StartCallBody, b'{"invitees":["u2"]}') == StartCallBody(invitees=("u2",))
    assert decode_body(MuteBody, b'{"muted":true}') == MuteBody(muted=True)
    for empty in (JoinBody, LeaveBody, EndBody):
        assert decode_body(empty, b"{}") == empty()


@pytest.mark.parametrize(
    ("body_type", "raw", "names"),
    [
        (SetPresenceBody, b'{"status":"asleep","device_id":"d1"}', "$.status"),
        (SetPresenceBody, b'{"status":"busy"}', "device_id"),
        (SetPresenceBody, b'{"status":"busy","device_id":"d1","colour":1}', "colour"),
        (SetPresenceBody, b'{"status":"busy","device_id":"d1","region":"eu west"}', "$.region"),
        (SetPresenceBody, b'{"status":"busy","device_id":"d1","region":""}', "$.region"),
        (HeartbeatBody, b'{"device_id":""}', "$.device_id"),
        (HeartbeatBody, b'{"device_id":"' + b"x" * 201 + b'"}', "$.device_id"),
        (StartCallBody, b"{}", "invitees"),
        (StartCallBody, b'{"invitees":[' + b",".join([b'"u"'] * 51) + b"]}", "$.invitees"),
        (StartCallBody, b'{"invitees":[],"topic":"' + b"t" * 201 + b'"}', "$.topic"),
        (MuteBody, b'{"muted":"yes"}', "$.muted"),
        (JoinBody, b'{"call_id":"c1"}', "call_id"),
    ],
)
def test_bodies_breaking_the_schema_name_the_field(body_type: type, raw: bytes, names: str) -> None:
    with pytest.raises(InvalidBody) as error:
        decode_body(body_type, raw)

    assert names in str(error.value)


@pytest.mark.parametrize("raw", [b"{", b"", b'{"device_id":"\xff"}', b'{"device_id":"\\ud800"}'])
def test_malformed_json_is_told_apart(raw: bytes) -> None:
    with pytest.raises(MalformedBody):
        decode_body(HeartbeatBody, raw)


@pytest.mark.parametrize(
    ("body_type", "raw", "field"),
    [
        (StartCallBody, b'{"invitees":[],"topic":"a\\u0000b"}', "topic"),
        (StartCallBody, b'{"invitees":[],"topic":"standup\\n"}', "topic"),
        (StartCallBody, b'{"invitees":["u\\u0085"]}', "invitees[0]"),
        (HeartbeatBody, b'{"device_id":"\\u001b[31m"}', "device_id"),
        (NewAccount, b'{"email":"a@b.io\\n","password":"long enough","display_name":"A"}', "email"),
        (NewAccount, b'{"email":"a@b.io","password":"long\\u0000enough","display_name":"A"}',
         "password"),
        (NewAccount, b'{"email":"a@b.io","password":"long enough","display_name":"\\u007f"}',
         "display_name"),
        (Credentials, b'{"email":"a\\u0000@b.io","password":"x"}', "email"),
        (NewTeam, b'{"name":"\\t"}', "name"),
        (NewMember, b'{"email":"a@b\\u0000.io"}', "email"),
    ],
)  # fmt: skip
def test_control_characters_in_text_are_refused_naming_the_field(
    body_type: type[Any], raw: bytes, field: str
) -> None:
    with pytest.raises(InvalidBody, match=re.escape(f"at `$.{field}`")):
        decode_body(body_type, raw)


def test_printable_text_of_any_script_is_accepted() -> None:
    topic = "Réunion — 会議 ✓ \U0001f3a7 \u2028"
    assert decode_body(StartCallBody, orjson.dumps({"invitees": [], "topic": topic})).topic == topic
    assert decode_body(NewTeam, '{"name":"Équipe"}'.encode()).name == "Équipe"
