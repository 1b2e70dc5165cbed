"""Field types shared by commands, events and request bodies, with their limits.

The limits live in the types (as `msgspec.Meta`) so that decoding enforces them, the error
names the field, and the generated JSON Schemas state them.

Text a client sends (the `*Text` types, used by the HTTP request bodies) holds no control
character (C0, DEL, C1: NUL among them, which PostgreSQL cannot store) and no lone surrogate
(which UTF-8 cannot encode). The types of records on the log stay lenient: a record already
written is data to carry, whatever it holds (`schemas.text` makes it storable).
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from schemas.clock import TIME_PATTERN

#: What client text may not hold: C0 controls, DEL, C1 controls, lone surrogates.
FORBIDDEN_CHARACTERS = r"\x00-\x1f\x7f-\x9f\ud800-\udfff"
#: The end of the text: not `$`, which in Python also matches before a final newline.
END = r"(?![\s\S])"
#: One line of printable text (any length; the types bound it).
PRINTABLE_PATTERN = rf"^[^{FORBIDDEN_CHARACTERS}]*{END}"

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
        pattern=rf"^[A-Za-z0-9][A-Za-z0-9._-]*{END}",
        description="A region label, such as eu-west; media rooms are placed by it.",
    ),
]

#: An id as a client sends it (an invitee's user id): printable text.
IdText = Annotated[
    str, Meta(min_length=1, max_length=200, pattern=PRINTABLE_PATTERN, description="An identifier.")
]

#: At most 50 user ids invited to a call, as a client sends them.
InviteesText = Annotated[
    tuple[IdText, ...],
    Meta(max_length=50, description="User ids of the members invited to the call."),
]

#: A device id as a client sends it: printable text.
DeviceIdText = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=200,
        pattern=PRINTABLE_PATTERN,
        description="The client's id for one of its devices (printable text).",
    ),
]

#: A call topic as a client sends it: printable text.
TopicText = Annotated[
    str,
    Meta(max_length=200, pattern=PRINTABLE_PATTERN, description="What the call is about."),
]

_EMAIL_PART = rf"[^@\s{FORBIDDEN_CHARACTERS}]+"

#: An e-mail address: one `@`, a dot in the domain, no space or control character.
Email = Annotated[
    str,
    Meta(
        pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}{END}",
        max_length=254,
        description="An e-mail address.",
    ),
]

#: A new password: 8 to 1024 printable characters.
Password = Annotated[
    str, Meta(min_length=8, max_length=1024, pattern=PRINTABLE_PATTERN, description="A password.")
]

#: A password offered at sign-in (any length up to 1024; a wrong one is a 401).
OfferedPassword = Annotated[
    str, Meta(max_length=1024, pattern=PRINTABLE_PATTERN, description="The account's password.")
]

#: The name a member shows to their teams.
DisplayName = Annotated[
    str,
    Meta(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN, description="A display name."),
]

#: A team's name.
TeamName = Annotated[
    str,
    Meta(min_length=1, max_length=100, pattern=PRINTABLE_PATTERN, description="The team's name."),
]

#: A one-time password reset token (what `POST /v1/admin/accounts/{id}/password-reset` gave).
ResetToken = Annotated[
    str,
    Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$", description="A reset token."),
]
