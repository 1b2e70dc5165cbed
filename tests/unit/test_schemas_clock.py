"""The contract's time strings: RFC 3339, UTC, milliseconds, Z."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from schemas.clock import TIME_PATTERN, format_millis, format_time, parse_millis, parse_time


def test_format_writes_utc_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 23, 19, 30, 0, 123_999, tzinfo=UTC)

    assert format_time(moment) == "2026-11-23T19:30:00.123Z"  # cut, not rounded


def test_format_converts_other_zones_to_utc() -> None:
    moment = datetime(2026, 11, 23, 20, 30, tzinfo=timezone(timedelta(hours=1)))

    assert format_time(moment) == "2026-11-23T19:30:00.000Z"


def test_format_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_time(datetime(2026, 11, 23, 19, 30))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T19:30:00.123Z",
        "2026-11-23t19:30:00.123z",
        "2026-11-23T20:30:00.123+01:00",
        "2026-11-23T19:30:00.123456789Z",
    ],
)
def test_parse_reads_rfc3339_in_any_zone(text: str) -> None:
    assert format_time(parse_time(text)) == "2026-11-23T19:30:00.123Z"


def test_parse_accepts_no_fraction() -> None:
    assert parse_time("2026-11-23T19:30:00Z") == datetime(2026, 11, 23, 19, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["2026-11-23", "2026-11-23T19:30:00", "2026-W48-1T19:30:00Z", "yesterday", ""]
)
def test_parse_refuses_what_is_not_rfc3339(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def test_millis_round_trip() -> None:
    text = "2026-11-23T19:30:00.123Z"

    assert format_millis(parse_millis(text)) == text
    assert parse_millis("1970-01-01T00:00:01.001Z") == 1001


def test_the_pattern_matches_what_format_writes() -> None:
    assert re.match(TIME_PATTERN, format_time(datetime.now(UTC)))
