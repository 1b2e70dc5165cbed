"""The mapper: typed records to envelopes and back, versions, upcasters, unknown types."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.commands import (
    AllocateRoom,
    Command,
    CommandPayload,
    EndCall,
    ExpirePresence,
    JoinCall,
    LeaveCall,
    RecordHeartbeat,
    ReleaseRoom,
    ReportSpeaking,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.envelope import GENESIS_HASH, seal
from schemas.events import (
    CallEnded,
    CallStarted,
    CommandRejected,
    DeviceStatus,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    PresenceChanged,
    RoomAllocated,
    RoomReleased,
    SpeakingChanged,
)
from schemas.mapper import (
    MAPPER,
    MalformedData,
    MalformedEnvelope,
    Mapper,
    UnknownType,
    UnsupportedVersion,
    register_upcaster,
)

NOW = "2026-11-23T19:30:00.123Z"

COMMANDS: list[CommandPayload] = [
    SetPresence(status="busy", device_id="d1"),
    RecordHeartbeat(device_id="d1"),
    ExpirePresence(),
    ExpirePresence(ttl_seconds=12.5),
    StartCall(call_id="c1", invitees=("u2", "u3"), topic="standup"),
    JoinCall(call_id="c1"),
    LeaveCall(call_id="c1"),
    SetMuted(call_id="c1", muted=True),
    EndCall(call_id="c1"),
    AllocateRoom(call_id="c1", node="n1", offer_url="http://n1/rooms/c1"),
    ReleaseRoom(call_id="c1"),
    ReportSpeaking(call_id="c1", user_id="u2", speaking=True),
]

DEVICES = [DeviceStatus(device_id="d1", status="busy", last_seen=NOW)]
EVENTS: list[Event] = [
    PresenceChanged(user_id="u1", status="busy", devices=DEVICES, last_seen=NOW, device_id="d1"),
    CallStarted(call_id="c1", started_by="u1", invitees=("u2",), topic=None),
    ParticipantJoined(call_id="c1", user_id="u2"),
    ParticipantLeft(call_id="c1", user_id="u2"),
    ParticipantMuted(call_id="c1", user_id="u2", muted=False),
    CallEnded(call_id="c1", reason="ended_by_participant"),
    CommandRejected(
        command_id="k", command_type="call.join", reason="already_in_call", call_id="c0"
    ),
    RoomAllocated(call_id="c1", node="n1", offer_url="http://n1/rooms/c1"),
    RoomReleased(call_id="c1"),
    SpeakingChanged(call_id="c1", user_id="u2", speaking=True),
]


def record_of(event: Event, mapper: Mapper = MAPPER, **changes: Any) -> dict[str, Any]:
    type_name, version, data = mapper.event_to_data(event)
    record = {
        "event_id": "e1",
        "type": type_name,
        "version": version,
        "team_id": "t1",
        "seq": 1,
        "occurred_at": NOW,
        "actor": "u1",
        "causation_id": "k1",
        "data": data,
        "prev_hash": GENESIS_HASH,
    }
    return seal({**record, **changes})


def test_every_command_type_and_every_event_type_is_registered() -> None:
    assert {name for name, _, _ in MAPPER.commands.types()} == {type(c).TYPE for c in COMMANDS}
    assert {name for name, _, _ in MAPPER.events.types()} == {type(e).TYPE for e in EVENTS}


@pytest.mark.parametrize("payload", COMMANDS, ids=lambda c: type(c).TYPE)
def test_commands_round_trip(payload: CommandPayload) -> None:
    command = Command(command_id="k1", team_id="t1", actor="u1", received_at=NOW, data=payload)

    raw = MAPPER.command_to_bytes(command)

    assert MAPPER.decode_command(raw) == command
    assert MAPPER.decode_command(MAPPER.encode_command(command)) == command


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).TYPE)
def test_events_round_trip(event: Event) -> None:
    decoded = MAPPER.decode_event(record_of(event))

    assert decoded.data == event
    assert (decoded.type, decoded.version, decoded.seq) == (type(event).TYPE, 1, 1)


def test_event_data_is_plain_json() -> None:
    _, _, data = MAPPER.event_to_data(EVENTS[1])

    assert data == {"call_id": "c1", "started_by": "u1", "invitees": ["u2"], "topic": None}


def test_an_unknown_event_type_can_be_skipped() -> None:
    record = record_of(EVENTS[2], type="call.recorded")

    with pytest.raises(UnknownType) as error:
        MAPPER.decode_event(record)
    assert error.value.type_name == "call.recorded"


def test_an_event_type_is_not_a_command_type() -> None:
    raw = {"command_id": "k", "type": "call.started", "version": 1, "team_id": "t",
           "actor": "u", "received_at": NOW, "data": {}}  # fmt: skip

    with pytest.raises(UnknownType):
        MAPPER.decode_command(raw)


def test_a_newer_version_is_unsupported() -> None:
    with pytest.raises(UnsupportedVersion):
        MAPPER.decode_event(record_of(EVENTS[2], version=2))


def test_data_breaking_the_schema_names_the_field() -> None:
    record = record_of(EVENTS[4], data={"call_id": "c1", "user_id": "u2", "muted": "no"})

    with pytest.raises(MalformedData, match=r"\$\.muted"):
        MAPPER.decode_event(record)


def test_a_broken_envelope_is_malformed() -> None:
    with pytest.raises(MalformedEnvelope):
        MAPPER.decode_event({"type": "call.ended"})
    with pytest.raises(MalformedEnvelope):
        MAPPER.decode_command(b'{"command_id": "k"}')


def pretend_presence_changed_v1_lacked_devices() -> Mapper:
    """A mapper in which presence.changed is at version 2, version 1 having had no devices."""
    mapper = Mapper()
    mapper.events.register(PresenceChanged, version=2)
    mapper.register_upcaster(
        "presence.changed", 1, lambda data: {"devices": [], "device_id": None, **data}
    )
    return mapper


def test_an_upcaster_upgrades_old_data_to_the_current_record() -> None:
    mapper = pretend_presence_changed_v1_lacked_devices()
    v1 = {"user_id": "u1", "status": "away", "last_seen": NOW}
    record = seal({**record_of(EVENTS[0], mapper), "version": 1, "data": v1})

    decoded = mapper.decode_event(record)

    assert decoded.version == 1  # as written
    assert decoded.data == PresenceChanged(user_id="u1", status="away", devices=[], last_seen=NOW)


def test_without_its_upcaster_old_data_is_unsupported() -> None:
    mapper = Mapper()
    mapper.events.register(PresenceChanged, version=2)
    record = seal({**record_of(EVENTS[0], mapper), "version": 1})

    with pytest.raises(UnsupportedVersion, match="from version 1"):
        mapper.decode_event(record)


def test_upcasters_chain_from_any_old_version() -> None:
    mapper = Mapper()
    mapper.commands.register(JoinCall, version=3)
    mapper.register_upcaster("call.join", 1, lambda d: {"call": d["id"]})
    mapper.register_upcaster("call.join", 2, lambda d: {"call_id": d["call"]})
    raw = {"command_id": "k", "type": "call.join", "version": 1, "team_id": "t",
           "actor": "u", "received_at": NOW, "data": {"id": "c9"}}  # fmt: skip

    assert mapper.decode_command(raw).data == JoinCall(call_id="c9")


def test_upcasters_only_for_known_types_and_old_versions() -> None:
    with pytest.raises(UnknownType):
        register_upcaster("call.recorded", 1, dict)
    with pytest.raises(ValueError, match="no upcaster"):
        register_upcaster("call.started", 1, dict)  # version 1 is current


def test_a_type_is_registered_once() -> None:
    with pytest.raises(ValueError, match="twice"):
        MAPPER.events.register(CallEnded)
