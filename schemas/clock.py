"""Times as the contract writes them: RFC 3339 UTC with milliseconds and a `Z`.

Every time in a command or an event is a string like `2026-11-23T19:30:00.123Z`: fixed width,
so that two of them compare as strings in the same order as the instants they name. The
deciders reckon in whole epoch milliseconds (`parse_millis`, `format_millis`) so that their
arithmetic is exact and the same on every machine.

Nothing here reads the clock: time enters the log only through the commands that carry it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

#: The one shape every time in a command or event has (what `format_time` writes).
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

# RFC 3339 `date-time` (section 5.6): a fraction of any length, `Z` or a numeric offset;
# `T` and `Z` may be lower case. Anything else (a bare date, week dates, no offset) is refused.
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """Write an aware datetime as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC, cutting below the ms."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_time needs an aware datetime (a naive one has no known zone)")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Read an RFC 3339 date-time (any offset, any fraction) as an aware UTC datetime."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 date-time: {text!r}")
    date, clock, fraction, offset = match.groups()
    # Python keeps microseconds only; a longer fraction is cut, as format_time cuts to ms.
    micros = (fraction or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{date}T{clock}.{micros}{zone}").astimezone(UTC)


def parse_millis(text: str) -> int:
    """Milliseconds since the Unix epoch of an RFC 3339 date-time."""
    return _to_millis(parse_time(text))


def format_millis(millis: int) -> str:
    """The contract's time string for a count of milliseconds since the Unix epoch."""
    return format_time(_EPOCH + timedelta(milliseconds=millis))


def _to_millis(moment: datetime) -> int:
    delta = moment - _EPOCH
    # Integer arithmetic on the parts: a float of the total seconds would round.
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
