"""`replay state` decodes only the events no later one overwrites (`LastChanges`), and folds
what `project` folds over every record.

The reference is the plain fold of `test_replay_state_bytes`: each record parsed into a dict
and projected in log order. Logs are scripted days with heartbeats, expiry ticks and released
rooms besides the benchmark's presence changes and calls, and records crafted where the order of
what waits and what applies at once decides the outcome.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pytest

from bench.replay import TeamDay
from replay.bounds import Bounds
from replay.state import StateFold, all_states
from schemas.clock import parse_millis
from schemas.commands import CommandPayload, ExpirePresence, RecordHeartbeat, ReleaseRoom
from schemas.envelope import seal
from schemas.event_bytes import EventBytes
from schemas.events import PresenceChanged
from schemas.mapper import MAPPER
from streams.projection import TeamView
from streams.projection import fold as folding
from streams.projection.project import event_of
from tests.unit.test_replay_state_bytes import Msg, reference

LATE = "2026-11-24T00:00:00.000Z"


class BusyDay(TeamDay):
    """The benchmark's team day, with heartbeats, expiry ticks and rooms released."""

    def next_command(self) -> tuple[str, CommandPayload]:
        rng, roll = self.rng, self.rng.random()
        if roll < 0.25:
            return rng.choice(self.members), RecordHeartbeat(
                device_id=rng.choice(["desk", "phone"])
            )
        if roll < 0.3:
            return "timer", ExpirePresence(ttl_seconds=30)
        if roll < 0.34 and self.ended:
            return "media:1", ReleaseRoom(call_id=rng.choice(self.ended))
        return super().next_command()


def busy_log(teams: int, events: int) -> list[dict[str, Any]]:
    rows = [row for seed in range(teams) for row in BusyDay(seed).records(events)]
    rows.sort(key=lambda row: row[0])
    return [orjson.loads(value) for _, _, value in rows]


def fold_bytes(
    raws: Sequence[bytes | None], bounds: Bounds, batch: int = 97
) -> dict[str, TeamView]:
    messages = [Msg(raw, at, part=at % 3) for at, raw in enumerate(raws)]
    fold = StateFold(bounds, lambda _: None)
    for start in range(0, len(messages), batch):
        fold.feed(messages[start : start + batch])
    views = fold.views
    assert views == reference(messages, bounds)
    assert all_states(views) == all_states(reference(messages, bounds))
    return views


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many records were decoded whole (`EventBytes.decode`), summed as the test goes."""
    count = [0]
    whole = EventBytes.decode

    def counted(self: EventBytes, values: Any) -> Any:
        count[0] += len(values)
        return whole(self, values)

    monkeypatch.setattr(EventBytes, "decode", counted)
    yield count


@pytest.fixture(params=["default", "small"])
def waiting(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folds' limits on what waits as they are, or small: settled mid-log over and over."""
    if request.param == "small":
        monkeypatch.setattr(folding, "MEMBER_WAITING", 1)
        monkeypatch.setattr(folding, "CALL_WAITING", 2)


@pytest.mark.usefixtures("waiting")
@pytest.mark.parametrize("instant", ["2026-11-23T08:30:00.000Z", "2026-11-23T10:00:00.000Z", LATE])
def test_skipping_what_is_overwritten_folds_what_the_full_fold_does(
    instant: str, decoded: list[int]
) -> None:
    records = busy_log(teams=5, events=500)
    kinds = {record["type"] for record in records}
    heartbeats = [r for r in records if r["type"] == "presence.changed" and r["actor"] != "timer"]
    expiries = [r for r in records if r["type"] == "presence.changed" and r["actor"] == "timer"]
    assert heartbeats and expiries
    assert {
        "call.participant_joined",
        "call.participant_left",
        "call.ended",
        "media.room_released",
    } <= kinds
    raws: list[bytes | None] = [orjson.dumps(record) for record in records]
    raws[300:300] = raws[200:210]  # copies written twice
    views = fold_bytes(raws, Bounds(until_ms=parse_millis(instant)))
    assert views
    if instant == LATE and folding.MEMBER_WAITING > 1:
        assert decoded[0] < len(records) / 2  # most were overwritten, never decoded


def resealed(record: dict[str, Any], seq: int, **changes: Any) -> bytes:
    """`record` as the team's record `seq`, with `changes`, sealed again."""
    fields = {key: value for key, value in record.items() if key != "hash"}
    return orjson.dumps(seal({**fields, "seq": seq, **changes}))


def team_log(kind: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One team's records, and its first of `kind`."""
    records = busy_log(teams=1, events=300)
    return records, next(record for record in records if record["type"] == kind)


@pytest.mark.usefixtures("waiting")
def test_a_members_last_record_that_does_not_decode_leaves_the_one_before() -> None:
    records, presence = team_log("presence.changed")
    last = records[-1]["seq"]
    data = presence["data"]
    raws = [orjson.dumps(record) for record in records] + [
        resealed(presence, last + 1, data={**data, "status": "busy"}),
        resealed(presence, last + 2, data={**data, "status": "asleep"}),  # not a status
        resealed(presence, last + 3, data={**data, "devices": 5}),
    ]
    views = fold_bytes(raws, Bounds(until_ms=parse_millis(LATE)))
    assert views[presence["team_id"]].members[data["user_id"]]["status"] == "busy"


@pytest.mark.usefixtures("waiting")
def test_a_call_end_that_does_not_decode_leaves_its_participants() -> None:
    records, started = team_log("call.started")
    call_id = started["data"]["call_id"]
    ended = next(
        r for r in records if r["type"] == "call.ended" and r["data"]["call_id"] == call_id
    )
    seq = ended["seq"]
    joined = {
        **started,
        "type": "call.participant_joined",
        "data": {"call_id": call_id, "user_id": "late-comer"},
    }
    muted = {**joined, "type": "call.participant_muted"}
    crafted = [
        resealed(joined, seq),  # in the call, waiting
        resealed(ended, seq + 1, data={"call_id": call_id}),  # no reason: changes nothing
        resealed(muted, seq + 2, data={**joined["data"], "muted": True}),
    ]
    before = [orjson.dumps(record) for record in records if record["seq"] < seq]
    views = fold_bytes([*before, *crafted], Bounds(until_ms=parse_millis(LATE)))
    call = views[started["team_id"]].calls[call_id]
    assert call["state"] == "active"
    assert {p["user_id"]: p["muted"] for p in call["participants"]}["late-comer"] is True


@pytest.mark.usefixtures("waiting")
def test_a_record_decoded_at_once_applies_after_the_ones_waiting_before_it() -> None:
    records, started = team_log("call.started")
    call_id = started["data"]["call_id"]
    seq = started["seq"]
    joined = {
        **started,
        "type": "call.participant_joined",
        "data": {"call_id": call_id, "user_id": "zoë"},
    }
    # The mute's JSON holds an escape (`\u00e9`): it is read the plain way, at once; the join
    # before it waits, and must come first or the mute finds nobody to mute.
    muted = {
        **joined,
        "type": "call.participant_muted",
        "actor": "ren\u00e9",
        "data": {"call_id": call_id, "user_id": "zoë", "muted": True},
    }
    crafted = [
        resealed(joined, seq + 1),
        resealed(muted, seq + 2).replace("é".encode(), b"\\u00e9"),
    ]
    before = [orjson.dumps(record) for record in records if record["seq"] <= seq]
    views = fold_bytes([*before, *crafted], Bounds(until_ms=parse_millis(LATE)))
    (zoe,) = [
        p for p in views[started["team_id"]].calls[call_id]["participants"] if p["user_id"] == "zoë"
    ]
    assert zoe["muted"] is True


@pytest.fixture
def presence_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """presence.changed as if at version 2, version 1 having prefixed user ids with `user:`."""
    events = MAPPER.events
    monkeypatch.setitem(events._classes, "presence.changed", (PresenceChanged, 2))
    monkeypatch.setitem(events._by_class, PresenceChanged, ("presence.changed", 2))
    monkeypatch.setattr(events, "_upcasters", dict(events._upcasters))

    def unprefixed(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "user_id": data["user_id"].removeprefix("user:")}

    MAPPER.register_upcaster("presence.changed", 1, unprefixed)
    yield


@pytest.mark.usefixtures("presence_v2")
def test_an_older_versions_keys_are_the_upcast_ones() -> None:
    records, presence = team_log("presence.changed")
    data, last = presence["data"], records[-1]["seq"]
    # The old record's key is `user:<id>` as written, the member's after upcasting: the new
    # record after it overwrites it.
    crafted = [
        resealed(
            presence,
            last + 1,
            version=1,
            data={**data, "user_id": f"user:{data['user_id']}", "status": "away"},
        ),
        resealed(presence, last + 2, version=2, data={**data, "status": "busy"}),
    ]
    raws = [orjson.dumps(record) for record in records] + crafted
    views = fold_bytes(raws, Bounds(until_ms=parse_millis(LATE)))
    assert views[presence["team_id"]].members[data["user_id"]]["status"] == "busy"


@pytest.mark.usefixtures("waiting")
def test_a_fold_of_records_at_hand_waits_as_the_byte_fold_does() -> None:
    """`LastChanges` on its own: records (dicts here) wait through `wait_member` and
    `wait_participant`, and the view is `TeamFold`'s of every record."""
    records = busy_log(teams=1, events=400)
    team = records[0]["team_id"]
    decoded: list[dict[str, Any]] = []

    def decode(waiting: list[dict[str, Any]]) -> list[Any]:
        decoded.extend(waiting)
        return [None if (found := event_of(r)) is None else found[0] for r in waiting]

    lazy = folding.LastChanges(team, decode)
    full = folding.TeamFold(TeamView(team_id=team))
    for record in records:
        full.add(record)
        data = record["data"]
        if record["type"] == "presence.changed":
            lazy.wait_member(record["seq"], data["user_id"], record, record["occurred_at"])
        elif record["type"] in {"call.participant_joined", "media.speaking"}:
            lazy.wait_participant(record["seq"], data["call_id"], record, record["occurred_at"])
        else:
            lazy.add(record)
    assert lazy.view() == full.view()
    assert len(decoded) < len(records) / 2
