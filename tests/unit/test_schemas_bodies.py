"""HTTP request bodies: strict, with errors that name the field."""

from __future__ import annotations

import pytest

from schemas.bodies import (
    EndBody,
    HeartbeatBody,
    InvalidBody,
    JoinBody,
    LeaveBody,
    MalformedBody,
    MuteBody,
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
