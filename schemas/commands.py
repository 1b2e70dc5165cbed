"""The commands: what a member (or a timer, or the media tier) asks a team's decider to do.

On the commands topic, keyed by `team_id`, a command is one JSON object:

    {"command_id", "type", "version", "team_id", "actor", "received_at", "data": {...}}

- `command_id`: chosen once, when the command is accepted (over HTTP, by a timer); the events
  it causes carry it as `causation_id`, and a command delivered twice is decided once.
- `type`, `version`: what `data` is (`call.start`, version 1...); see the classes below.
- `team_id`: the team whose decider owns the command, and the Kafka key.
- `actor`: the user id of the member who sent it; for commands no member sent, a principal
  such as `system:presence-timer` or `media:<node>`. It becomes the events' `actor`.
- `received_at`: when the command was accepted, as `2026-11-23T19:30:00.123Z`. It is the only
  clock a decider sees, and becomes the `occurred_at` of the events it causes.
- `data`: the payload. Everything that varies is in the command (ids it creates, its time), so
  that deciding it again gives the same events.

Payloads on the topic ignore fields they do not know (a newer producer may add some); the HTTP
request bodies (`schemas.bodies`) are the strict, client-facing side.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeAlias

import msgspec

from schemas.fields import (
    DeviceId,
    Id,
    Invitees,
    Positive,
    PresenceStatus,
    Region,
    Timestamp,
    Topic,
)


class CommandEnvelope(msgspec.Struct, frozen=True):
    """A command as it travels on the commands topic; `data` is decoded by its `type`."""

    command_id: Id
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    version: Positive
    team_id: Id
    actor: Id
    received_at: Timestamp
    data: dict[str, Any]


class SetPresence(msgspec.Struct, frozen=True):
    """Set the presence of one of the actor's devices, and (optionally) the region it is in.

    `region` is absent, not null, when the client gave none, so a command without it reads and
    encodes exactly as before the field existed.
    """

    TYPE: ClassVar[str] = "presence.set"
    VERSION: ClassVar[int] = 1

    status: PresenceStatus
    device_id: DeviceId
    region: Region | msgspec.UnsetType = msgspec.UNSET


class RecordHeartbeat(msgspec.Struct, frozen=True):
    """One of the actor's devices is still here (a device unheard for the TTL goes offline)."""

    TYPE: ClassVar[str] = "presence.heartbeat"
    VERSION: ClassVar[int] = 1

    device_id: DeviceId


class ExpirePresence(msgspec.Struct, frozen=True):
    """Timer tick: devices not heard for the TTL before `received_at` go offline.

    `ttl_seconds`, when set, overrides the decider's configured TTL, so that re-deciding the
    tick after a configuration change gives the same events.
    """

    TYPE: ClassVar[str] = "presence.expire"
    VERSION: ClassVar[int] = 1

    ttl_seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None


class StartCall(msgspec.Struct, frozen=True):
    """Start a call with the actor as first participant; `call_id` is chosen when accepted."""

    TYPE: ClassVar[str] = "call.start"
    VERSION: ClassVar[int] = 1

    call_id: Id
    invitees: Invitees = ()
    topic: Topic | None = None


class JoinCall(msgspec.Struct, frozen=True):
    """Join an active call of the team."""

    TYPE: ClassVar[str] = "call.join"
    VERSION: ClassVar[int] = 1

    call_id: Id


class LeaveCall(msgspec.Struct, frozen=True):
    """Leave a call (the last participant to leave ends it)."""

    TYPE: ClassVar[str] = "call.leave"
    VERSION: ClassVar[int] = 1

    call_id: Id


class SetMuted(msgspec.Struct, frozen=True):
    """Mute (`muted` true) or unmute oneself in a call."""

    TYPE: ClassVar[str] = "call.mute"
    VERSION: ClassVar[int] = 1

    call_id: Id
    muted: bool


class EndCall(msgspec.Struct, frozen=True):
    """End a call for everyone (any participant may)."""

    TYPE: ClassVar[str] = "call.end"
    VERSION: ClassVar[int] = 1

    call_id: Id


class AllocateRoom(msgspec.Struct, frozen=True):
    """Media tier: record the mixing room it allocated for a call (sent on call.started)."""

    TYPE: ClassVar[str] = "media.allocate_room"
    VERSION: ClassVar[int] = 1

    call_id: Id
    node: Id
    offer_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ReleaseRoom(msgspec.Struct, frozen=True):
    """Media tier: record that it released a call's mixing room (sent on call.ended)."""

    TYPE: ClassVar[str] = "media.release_room"
    VERSION: ClassVar[int] = 1

    call_id: Id


class ReportSpeaking(msgspec.Struct, frozen=True):
    """Media tier: a participant started or stopped speaking."""

    TYPE: ClassVar[str] = "media.report_speaking"
    VERSION: ClassVar[int] = 1

    call_id: Id
    user_id: Id
    speaking: bool


#: Every command payload.
CommandPayload: TypeAlias = (
    SetPresence
    | RecordHeartbeat
    | ExpirePresence
    | StartCall
    | JoinCall
    | LeaveCall
    | SetMuted
    | EndCall
    | AllocateRoom
    | ReleaseRoom
    | ReportSpeaking
)

COMMAND_TYPES: tuple[type[CommandPayload], ...] = (
    SetPresence,
    RecordHeartbeat,
    ExpirePresence,
    StartCall,
    JoinCall,
    LeaveCall,
    SetMuted,
    EndCall,
    AllocateRoom,
    ReleaseRoom,
    ReportSpeaking,
)


class Command(msgspec.Struct, frozen=True):
    """A decoded command: the envelope with its typed payload (built by `schemas.mapper`)."""

    command_id: str
    team_id: str
    actor: str
    received_at: str
    data: CommandPayload

    @property
    def type(self) -> str:
        """The envelope `type` of the payload, e.g. `call.start`."""
        return self.data.TYPE
