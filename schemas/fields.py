"""Field types shared by commands, events and request bodies, with their limits.

The limits live in the types (as `msgspec.Meta`) so that decoding enforces them, the error
names the field, and the generated JSON Schemas state them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from schemas.clock import TIME_PATTERN

#: An identifier (a UUID in practice; any non-empty string up to 200 characters is accepted).
Id = Annotated[str, Meta(min_length=1, max_length=200, description="An identifier.")]

#: A client's name for one of its devices (a browser tab, a desktop app).
DeviceId = Annotated[
    str,
    Meta(min_length=1, max_length=200, description="The client's id for one of its devices."),
]

#: A call's subject, as typed by the member who starts it.
Topic = Annotated[str, Meta(max_length=200, description="What the call is about.")]

#: At most 50 user ids invited to a call.
Invitees = Annotated[
    tuple[Id, ...],
    Meta(max_length=50, description="User ids of the members invited to the call."),
]

#: A time as the contract writes it: RFC 3339, UTC, milliseconds, `Z`.
Timestamp = Annotated[
    str,
    Meta(pattern=TIME_PATTERN, description="RFC 3339 UTC time, e.g. 2026-11-23T19:30:00.123Z."),
]

#: A SHA-256 digest in lower-case hexadecimal.
Hash = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lower-case hex.")]

#: A positive counter (event `seq`, record `version`).
Positive = Annotated[int, Meta(ge=1)]

#: What a member or one of their devices shows to the team.
PresenceStatus = Literal["available", "busy", "away", "offline"]

#: Where a client or a media node is, e.g. `eu-west`: a short label, letters, digits, `.-_`.
Region = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A region label, such as eu-west; media rooms are placed by it.",
    ),
]
