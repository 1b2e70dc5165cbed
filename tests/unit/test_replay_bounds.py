"""Time bounds of a replay: RFC 3339 in, the contract's time strings out; a team's partition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from replay.bounds import CLOCK_SLACK_MS, Bounds, ReplayError, parse_instant
from replay.reading import team_partition
from schemas.clock import parse_millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T19:30:00.123Z", "2026-11-23T19:30:00.123Z"),
        ("2026-11-23T19:30:00Z", "2026-11-23T19:30:00.000Z"),
        ("2026-11-23t19:30:00z", "2026-11-23T19:30:00.000Z"),
        ("2026-11-23T20:30:00.5+01:00", "2026-11-23T19:30:00.500Z"),
        ("2026-11-23T14:00:00-05:30", "2026-11-23T19:30:00.000Z"),
    ],
)
def test_rfc3339_times_in_any_offset_are_read_as_utc(text: str, expected: str) -> None:
    assert parse_instant("--at", text) == parse_millis(expected)


def test_a_finer_from_rounds_up_and_a_finer_to_rounds_down() -> None:
    text = "2026-11-23T19:30:00.1234Z"
    assert parse_instant("--to", text) == parse_millis("2026-11-23T19:30:00.123Z")
    assert parse_instant("--from", text, round_up=True) == parse_millis("2026-11-23T19:30:00.124Z")
    exact = "2026-11-23T19:30:00.123Z"
    assert parse_instant("--from", exact, round_up=True) == parse_millis(exact)


def test_now_is_the_clock() -> None:
    before = int(datetime.now(UTC).timestamp() * 1000)
    assert before - 1 <= parse_instant("--at", "now") <= before + 5_000


@pytest.mark.parametrize(
    "text", ["yesterday", "2026-11-23", "2026-11-23T19:30:00", "19:30:00Z", "2026-13-01T00:00:00Z"]
)
def test_anything_but_rfc3339_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ReplayError, match=r"^--from .* is not an RFC 3339 date-time"):
        parse_instant("--from", text)


def test_bounds_are_kept_as_contract_time_strings() -> None:
    since = parse_millis("2026-11-23T19:00:00.000Z")
    until = parse_millis("2026-11-23T20:00:00.000Z")
    bounds = Bounds(since_ms=since, until_ms=until, team_id="t1")
    assert bounds.since == "2026-11-23T19:00:00.000Z"
    assert bounds.until == "2026-11-23T20:00:00.000Z"
    # Reading starts early and stops late by the clock slack, for records out of time order.
    assert bounds.seek_ms == since - CLOCK_SLACK_MS
    assert bounds.stop_after == "2026-11-23T20:01:00.000Z"
    assert "team t1" in bounds.describe()
    assert Bounds().since is None and Bounds().stop_after is None and Bounds().seek_ms is None


def test_from_after_to_is_refused() -> None:
    with pytest.raises(ReplayError, match="--from is later than --to"):
        Bounds(since_ms=2, until_ms=1)


#: The Java client's own murmur2 test vectors (org.apache.kafka.common.utils.UtilsTest), signed
#: as Java returns them, and the partition of 12 the Java default partitioner gives each key
#: (`Utils.toPositive(hash) % 12`).
JAVA_KEYS = [
    ("21", -973932308, 0),
    ("foobar", -790332482, 6),
    ("a-little-bit-long-string", -985981536, 8),
    ("a-little-bit-longer-string", -1486304829, 11),
    ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971, 5),
    ("abc", 479470107, 3),
]


@pytest.mark.parametrize(("key", "java_hash", "of_twelve"), JAVA_KEYS)
def test_a_team_is_in_the_partition_javas_default_partitioner_picks(
    key: str, java_hash: int, of_twelve: int
) -> None:
    assert team_partition(key, 12) == of_twelve
    for partitions in (1, 2, 3, 7, 64, 1000):
        assert team_partition(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


def test_a_team_has_one_partition_in_range() -> None:
    teams = [f"team-{n}" for n in range(200)]
    partitions = {team_partition(team, 12) for team in teams}
    assert partitions <= set(range(12)) and len(partitions) > 6
    assert team_partition("team-7", 12) == team_partition("team-7", 12)
