"""`replay state` read from bytes (`schemas.event_bytes`, `TeamFold`) folds what `project` folds.

The reference is the plain path the fast one replaces: each message parsed into a dict, then
`project` per record, views never mutated. Logs are scripted days (the benchmark's) with
records of every odd kind mixed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from bench.replay import TeamDay
from replay.bounds import Bounds
from replay.state import StateFold, all_states
from schemas.clock import TIME_PATTERN, parse_millis
from schemas.envelope import record_or_none, seal
from schemas.event_bytes import HASH_PATTERN, EventBytes, EventHead, shapes
from schemas.mapper import MAPPER, MapperError
from streams.projection import TeamView, project, record_key
from tests.unit.test_replay_state import call_started_v2, old_call_started

__all__ = ["call_started_v2"]  # a fixture of the state tests, used here too

AT = "2026-11-23T12:00:00.000Z"


@dataclass
class Msg:
    """A message as the reader hands it on."""

    raw: bytes | None
    at: int
    part: int = 0
    team: bytes | None = None

    def value(self) -> bytes | None:
        return self.raw

    def key(self) -> bytes | None:
        return self.team

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.at


def reference(messages: list[Msg], bounds: Bounds) -> dict[str, TeamView]:
    """The fold as it was before decoding from bytes: a dict per record, `project` per dict."""
    until, stop_after = bounds.until or "", bounds.stop_after or ""
    views: dict[str, TeamView] = {}
    stopped: set[str] = set()
    past: set[int] = set()
    for message in messages:
        if message.partition() in past or (record := record_or_none(message.value())) is None:
            continue
        at = record.get("occurred_at")
        if isinstance(at, str) and at > stop_after:
            past.add(message.partition())
            continue
        key = record_key(record)
        if key is None or not isinstance(at, str) or key[0] in stopped:
            continue
        if at > until:
            stopped.add(key[0])
            continue
        views[key[0]], _ = project(views.get(key[0]) or TeamView(team_id=key[0]), record)
    return views


def day(teams: int, events: int) -> list[dict[str, Any]]:
    """Several teams' scripted days, interleaved in time order."""
    rows = [row for seed in range(teams) for row in TeamDay(seed).records(events)]
    rows.sort(key=lambda row: row[0])
    return [orjson.loads(value) for _, _, value in rows]


def odd_records(records: list[dict[str, Any]]) -> list[bytes | None]:
    """Records of every kind the fast path must leave to the plain one, or judge as it does."""
    first = records[0]
    team = first["team_id"]
    resealed = {key: value for key, value in first.items() if key != "hash"}

    def next_of(**changes: Any) -> dict[str, Any]:
        return seal({**resealed, "seq": 10_000, **changes})

    # In seq order: a team skips any record below the highest seq it has applied.
    return [
        None,
        b"not json",
        b"[1, 2]",
        orjson.dumps({**first, "seq": 0}),  # no usable place
        orjson.dumps(next_of(type="call.renamed")),  # a type not known: position only
        orjson.dumps(next_of(version=99, seq=10_001)),  # a newer version: position only
        orjson.dumps(next_of(data={"call_id": 5}, seq=10_002)),  # broken data
        orjson.dumps(next_of(data=[], seq=10_003)),  # data not an object
        # NUL in text: the plain path replaces it (schemas.text), and so applies the event.
        orjson.dumps(
            next_of(
                type="presence.changed",
                seq=10_004,
                data={
                    "user_id": "nul\u0000user",
                    "status": "busy",
                    "devices": [],
                    "last_seen": AT,
                },
            )
        ),
        # A time of unicode digits matches the pattern (`\d`); one with a final newline too.
        orjson.dumps(next_of(occurred_at="\uff12\uff1026-11-23T12:00:00.000Z", seq=10_005)),
        orjson.dumps(next_of(occurred_at=AT + "\n", seq=10_006)),
        orjson.dumps({**next_of(seq=10_007), "hash": "F" * 64}),  # upper case: envelope broken
        orjson.dumps({**first, "team_id": team, "seq": True}),
        orjson.dumps({**first, "occurred_at": 5}),
    ]


@pytest.mark.parametrize("instant", ["2026-11-23T09:00:00.000Z", "2026-11-24T00:00:00.000Z"])
def test_folding_bytes_gives_the_plain_folds_views(instant: str) -> None:
    records = day(teams=6, events=400)
    raws: list[bytes | None] = [orjson.dumps(record) for record in records]
    raws += odd_records(records)  # last: a seq far ahead would make a team skip the rest
    raws[300:300] = raws[200:210]  # copies written twice
    messages = [Msg(raw, at, part=at % 3) for at, raw in enumerate(raws)]
    bounds = Bounds(until_ms=parse_millis(instant))
    fold = StateFold(bounds, lambda _: None)
    for start in range(0, len(messages), 97):
        fold.feed(messages[start : start + 97])
    expected = reference(messages, bounds)
    assert fold.views == expected
    assert all_states(fold.views) == all_states(expected)


def test_a_partition_past_the_instant_and_one_teams_fold() -> None:
    records = day(teams=3, events=200)
    team = records[0]["team_id"]
    messages = [
        Msg(orjson.dumps(record), at, part=at % 2, team=record["team_id"].encode())
        for at, record in enumerate(records)
    ]
    # A record far past the instant ends its partition (1), whatever team it is of.
    late = {**records[5], "occurred_at": "2027-01-01T00:00:00.000Z"}
    messages.insert(50, Msg(orjson.dumps(late), 0, part=1, team=team.encode()))
    bounds = Bounds(until_ms=parse_millis("2026-11-23T20:00:00.000Z"), team_id=team)
    fold = StateFold(bounds, lambda _: None)
    assert 1 in fold.feed(messages)
    expected = reference([m for m in messages if m.key() in (None, team.encode())], bounds)
    assert fold.views == {team: expected[team]}


def test_each_record_decodes_to_what_the_mapper_says_of_it() -> None:
    records = day(teams=2, events=300)
    raws = [orjson.dumps(record) for record in records]
    heads, events = EventBytes().decode(raws)
    for raw, head, event, shaped in zip(raws, heads, events, shapes(heads), strict=True):
        assert head is not None and shaped
        assert event == MAPPER.decode_event(orjson.loads(raw)).data


def test_an_event_the_mapper_refuses_has_no_typed_event() -> None:
    (record,) = day(teams=1, events=1)
    for broken in ({"version": 7}, {"type": "x.y"}, {"data": {"user_id": []}}):
        raw = orjson.dumps({**record, **broken})
        with pytest.raises(MapperError):
            MAPPER.decode_event(orjson.loads(raw))
        (head,), (event,) = EventBytes().decode([raw])
        assert head is not None and event is None


TIMES = st.one_of(
    st.just(AT),
    st.from_regex(TIME_PATTERN),
    st.text(alphabet="0123456789-T:.Z\n\u0663", max_size=26),
)
HASHES = st.one_of(
    st.just("a" * 64),
    st.just("0" * 64),
    st.from_regex(HASH_PATTERN),
    st.text(alphabet="0123456789abcdefABCDEF \n", min_size=62, max_size=66),
)


@settings(database=None, max_examples=300, deadline=None)
@for_all(st.lists(st.tuples(TIMES, HASHES, HASHES), min_size=1, max_size=8))
def test_a_batchs_shape_check_is_each_records_pattern_check(
    fields: list[tuple[str, str, str]],
) -> None:
    heads: list[EventHead | None] = [
        EventHead(
            event_id="e",
            type="t",
            version=1,
            team_id="t",
            seq=1,
            occurred_at=at,
            actor="a",
            causation_id="c",
            data=orjson.dumps({}),  # type: ignore[arg-type]
            prev_hash=prev,
            hash=digest,
        )
        for at, prev, digest in fields
    ]
    heads.append(None)
    expected = [
        bool(re.search(TIME_PATTERN, at))
        and bool(re.search(HASH_PATTERN, prev))
        and bool(re.search(HASH_PATTERN, digest))
        for at, prev, digest in fields
    ]
    assert shapes(heads) == [*expected, False]


@pytest.mark.usefixtures("call_started_v2")
def test_an_old_version_read_from_bytes_is_upcast() -> None:
    record = old_call_started()
    fold = StateFold(Bounds(until_ms=parse_millis("2030-01-01T00:00:00.000Z")), print)
    fold.feed([Msg(orjson.dumps(record), 0)])
    assert fold.views["t9"].calls["c9"]["topic"] == "retro"
