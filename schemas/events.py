"""The events: what happened, in the past tense; the `data` of an event envelope.

Each record names its envelope `type` and current `version` as class variables. Events hold
ids, never e-mail addresses or names. They ignore fields they do not know (no
`forbid_unknown_fields`): a later version may add fields, and an older reader must still read it.
For the same reason, open-ended codes (`reason`) are plain strings; the known values are listed
in `RejectionReason` and `EndReason`.
"""

from __future__ import annotations

from typing import ClassVar, TypeAlias

import msgspec

from schemas.fields import DeviceId, Id, Invitees, PresenceStatus, Region, Timestamp, Topic


class DeviceStatus(msgspec.Struct, frozen=True):
    """One device of a member: its status as the team sees it, and when it was last heard."""

    device_id: DeviceId
    status: PresenceStatus
    last_seen: Timestamp


class PresenceChanged(msgspec.Struct, frozen=True):
    """A member's presence after a set, a heartbeat or an expiry: the most present device's.

    `status` is `available` if any device is available, else `busy`, else `away`, and
    `offline` only when every device is offline (or none is left). A device is offline when set
    so, or when its heartbeats stopped for the presence TTL; a device offline for a day is
    dropped from `devices`. `device_id` is the device whose presence.set or heartbeat this
    records, or null when an expiry tick caused it or a heartbeat that is no later than an
    expired device's `last_seen` (a late copy, which does not bring it back). Every
    presence.set and every heartbeat records one, even when nothing changed, so the log holds
    every time the decider relies on; an expiry tick records one only for a member whose devices
    changed. `region` is the one the presence.set reported, absent if it reported none (and
    for heartbeats and expiries); the media tier places a call in its starter's last region.
    """

    TYPE: ClassVar[str] = "presence.changed"
    VERSION: ClassVar[int] = 1

    user_id: Id
    status: PresenceStatus
    devices: list[DeviceStatus]
    last_seen: Timestamp
    device_id: DeviceId | None = None
    region: Region | msgspec.UnsetType = msgspec.UNSET


class CallStarted(msgspec.Struct, frozen=True):
    """A call started; `started_by` is its first participant (no participant_joined for them).

    Invitees become participants only when they join; the starter is never among them.
    """

    TYPE: ClassVar[str] = "call.started"
    VERSION: ClassVar[int] = 1

    call_id: Id
    started_by: Id
    invitees: Invitees
    topic: Topic | None = None


class ParticipantJoined(msgspec.Struct, frozen=True):
    """A member joined an active call."""

    TYPE: ClassVar[str] = "call.participant_joined"
    VERSION: ClassVar[int] = 1

    call_id: Id
    user_id: Id


class ParticipantLeft(msgspec.Struct, frozen=True):
    """A participant left a call (if they were the last one, call.ended follows)."""

    TYPE: ClassVar[str] = "call.participant_left"
    VERSION: ClassVar[int] = 1

    call_id: Id
    user_id: Id


class ParticipantMuted(msgspec.Struct, frozen=True):
    """A participant muted (`muted` true) or unmuted (`muted` false) themselves."""

    TYPE: ClassVar[str] = "call.participant_muted"
    VERSION: ClassVar[int] = 1

    call_id: Id
    user_id: Id
    muted: bool


class EndReason:
    """Why a call ended (the known values of `CallEnded.reason`)."""

    ENDED_BY_PARTICIPANT = "ended_by_participant"
    LAST_PARTICIPANT_LEFT = "last_participant_left"


class CallEnded(msgspec.Struct, frozen=True):
    """A call ended: `ended_by_participant` (the actor ended it for everyone) or
    `last_participant_left`. Everyone still in it is out of it; no participant_left follows.
    """

    TYPE: ClassVar[str] = "call.ended"
    VERSION: ClassVar[int] = 1

    call_id: Id
    reason: str


class RejectionReason:
    """Why a command was rejected (the known values of `CommandRejected.reason`)."""

    ALREADY_IN_CALL = "already_in_call"  # call_id: the call the user is already in
    UNKNOWN_CALL = "unknown_call"  # no such call in this team (or forgotten long ago)
    CALL_ENDED = "call_ended"
    ALREADY_JOINED = "already_joined"  # the user is already a participant of that call
    NOT_IN_CALL = "not_in_call"  # leave, mute, end or speaking by a non-participant
    CALL_EXISTS = "call_exists"  # a call.start reused the id of an existing call
    NO_ROOM = "no_room"  # media.release_room for a call without a room
    UNKNOWN_COMMAND = "unknown_command"  # a command type or version this decider does not know
    MALFORMED_COMMAND = "malformed_command"  # the command's data breaks its schema


class CommandRejected(msgspec.Struct, frozen=True):
    """A command was decided and refused: its only outcome; nothing else changed.

    `call_id` is set only for `already_in_call`: the call the user is already in.
    """

    TYPE: ClassVar[str] = "command.rejected"
    VERSION: ClassVar[int] = 1

    command_id: Id
    command_type: str
    reason: str
    call_id: Id | None = None


class RoomAllocated(msgspec.Struct, frozen=True):
    """The media tier allocated the call's mixing room; clients connect to `offer_url`."""

    TYPE: ClassVar[str] = "media.room_allocated"
    VERSION: ClassVar[int] = 1

    call_id: Id
    node: Id
    offer_url: str


class RoomReleased(msgspec.Struct, frozen=True):
    """The media tier released the call's mixing room."""

    TYPE: ClassVar[str] = "media.room_released"
    VERSION: ClassVar[int] = 1

    call_id: Id


class SpeakingChanged(msgspec.Struct, frozen=True):
    """A participant started (`speaking` true) or stopped speaking, as the mixer heard it."""

    TYPE: ClassVar[str] = "media.speaking"
    VERSION: ClassVar[int] = 1

    call_id: Id
    user_id: Id
    speaking: bool


#: Every event record, in the contract's order.
Event: TypeAlias = (
    PresenceChanged
    | CallStarted
    | ParticipantJoined
    | ParticipantLeft
    | ParticipantMuted
    | CallEnded
    | CommandRejected
    | RoomAllocated
    | RoomReleased
    | SpeakingChanged
)

EVENT_TYPES: tuple[type[Event], ...] = (
    PresenceChanged,
    CallStarted,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    CallEnded,
    CommandRejected,
    RoomAllocated,
    RoomReleased,
    SpeakingChanged,
)


class RecordedEvent(msgspec.Struct, frozen=True):
    """An event read from the log: the envelope with its typed (and upcast) `data`.

    `version` is the version the record was written with; `data` is always the current one.
    """

    event_id: str
    type: str
    version: int
    team_id: str
    seq: int
    occurred_at: str
    actor: str
    causation_id: str
    data: Event
    prev_hash: str
    hash: str
