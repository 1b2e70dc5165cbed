"""HTTP request bodies of the client commands: strict, so a mistake is named, never ignored.

`decode_body(SetPresenceBody, raw)` tells malformed JSON (answer 400) from JSON that breaks
the schema (answer 422, with a message naming the field, e.g. "Object contains unknown field
`colour`" or "Expected `str` of length <= 200 - at `$.device_id`"). Text fields take
printable text only (`schemas.fields`): a NUL or another control character is a 422 too.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from schemas.fields import (
    DeviceIdText,
    DisplayName,
    Email,
    InviteesText,
    OfferedPassword,
    Password,
    PresenceStatus,
    Region,
    ResetToken,
    TeamName,
    TopicText,
)


class NewAccount(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/accounts`."""

    email: Email
    password: Password
    display_name: DisplayName


class Credentials(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/sessions`."""

    email: Email
    password: OfferedPassword


class NewTeam(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/teams`."""

    name: TeamName


class NewMember(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/teams/{team_id}/members`."""

    email: Email


class SetPresenceBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/teams/{team_id}/presence`."""

    status: PresenceStatus
    device_id: DeviceIdText
    region: Region | None = None  # where the client is: the media tier places its calls there


class HeartbeatBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/teams/{team_id}/presence/heartbeat`."""

    device_id: DeviceIdText


class StartCallBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/teams/{team_id}/calls`."""

    invitees: InviteesText
    topic: TopicText | None = None


class JoinBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/calls/{call_id}/join`: an empty object."""


class LeaveBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/calls/{call_id}/leave`: an empty object."""


class MuteBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/calls/{call_id}/mute`."""

    muted: bool


class EndBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/calls/{call_id}/end`: an empty object."""


class MalformedBody(ValueError):
    """The body is not JSON (or not UTF-8): answer 400."""


class InvalidBody(ValueError):
    """The body is JSON but breaks the schema: answer 422; the message names the field."""


B = TypeVar("B", bound=msgspec.Struct)


def decode_body(body_type: type[B], raw: bytes) -> B:
    """Decode and validate a request body, raising MalformedBody or InvalidBody."""
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:  # a subclass of DecodeError: test it first
        raise InvalidBody(str(exc)) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise MalformedBody(f"malformed JSON: {exc}") from exc


class PasswordReset(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`POST /v1/password-resets`: the one-time token an operator's reset gave, a new password."""

    token: ResetToken
    password: Password
