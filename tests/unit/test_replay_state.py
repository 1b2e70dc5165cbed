"""`replay state --at`: the live projection folded over each team's log up to an instant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from replay.bounds import Bounds
from replay.export import Exporter
from replay.state import all_states, fold_at, team_state
from replay.verify import verify_lines
from schemas.clock import parse_millis
from schemas.commands import CommandPayload, JoinCall, LeaveCall, SetPresence, StartCall
from schemas.envelope import seal
from schemas.events import CallStarted
from schemas.mapper import MAPPER
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import at_time, command
from streams.projection import fold_views


class Log:
    """Teams' logs, grown by deciding commands as the worker does."""

    def __init__(self) -> None:
        self.states: dict[str, TeamState] = {}
        self.records: list[dict[str, Any]] = []

    def run(self, team: str, actor: str, payload: CommandPayload, at: float) -> None:
        state = self.states.get(team, TeamState())
        records, self.states[team] = decide_and_seal(
            state, command(actor, payload, at=at, team_id=team)
        )
        self.records += records


@pytest.fixture
def log() -> Log:
    log = Log()
    log.run("t1", "alice", SetPresence(status="busy", device_id="laptop"), at=1)
    log.run("t1", "alice", StartCall(call_id="c1", invitees=("bob",), topic="standup"), at=2)
    log.run("t2", "carol", SetPresence(status="available", device_id="phone"), at=3)
    log.run("t1", "bob", JoinCall(call_id="c1"), at=4)
    log.run("t1", "alice", LeaveCall(call_id="c1"), at=5)
    log.run("t2", "carol", SetPresence(status="away", device_id="phone"), at=6)
    return log


def until(seconds: float, team: str | None = None) -> Bounds:
    return Bounds(until_ms=parse_millis(at_time(seconds)), team_id=team)


@pytest.mark.parametrize("instant", [0, 1, 2.5, 4, 5, 6, 60])
def test_the_state_at_an_instant_is_the_fold_of_what_occurred_by_then(
    log: Log, instant: float
) -> None:
    fold = fold_at(log.records, until(instant), print)
    upto = [record for record in log.records if record["occurred_at"] <= at_time(instant)]
    assert fold.views == fold_views(upto)
    assert all_states(fold.views) == all_states(fold_views(upto))


def test_one_teams_state_has_the_read_model_endpoints_shapes(log: Log) -> None:
    state = team_state(fold_at(log.records, until(4, "t1"), print).views["t1"])
    assert state["position"] == "3"
    assert [m["user_id"] for m in state["presence"]["members"]] == ["alice"]
    assert set(state["presence"]) == {"members"}
    (call,) = state["calls"]
    assert call["call_id"] == "c1" and [p["user_id"] for p in call["participants"]] == [
        "alice",
        "bob",
    ]


def test_all_teams_come_as_a_list_each_with_its_team_id(log: Log) -> None:
    states = all_states(fold_at(log.records, until(60), print).views)
    assert [state["team_id"] for state in states] == ["t1", "t2"]
    assert states[1]["presence"]["members"][0]["status"] == "away"
    assert states[0]["position"] == "4" and states[1]["position"] == "2"


def test_a_team_stops_at_its_first_record_past_the_instant(log: Log) -> None:
    # A clock that ran backwards: seq 3 occurred "after" seq 4. The state at second 4 is the
    # log up to seq 2, not seqs 1, 2 and 4 with a hole.
    t1 = [record for record in log.records if record["team_id"] == "t1"]
    skewed = [t1[0], t1[1], {**t1[2], "occurred_at": at_time(30)}, t1[3]]
    fold = fold_at(skewed, until(10), print)
    assert fold.views["t1"].seq == 2


@pytest.fixture
def call_started_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """call.started as if it were at version 2, version 1 having called `topic` `title`.

    The registry has no public way to raise a type's version; a test of upcasting needs one.
    """
    events = MAPPER.events
    monkeypatch.setitem(events._classes, "call.started", (CallStarted, 2))
    monkeypatch.setitem(events._by_class, CallStarted, ("call.started", 2))
    monkeypatch.setattr(events, "_upcasters", dict(events._upcasters))

    def rename_title(data: dict[str, Any]) -> dict[str, Any]:
        upgraded = {key: value for key, value in data.items() if key != "title"}
        return {**upgraded, "topic": data.get("title")}

    MAPPER.register_upcaster("call.started", 1, rename_title)
    yield


def old_call_started() -> dict[str, Any]:
    """A version 1 record as an old writer sealed it."""
    return seal(
        {
            "event_id": "e1",
            "type": "call.started",
            "version": 1,
            "team_id": "t9",
            "seq": 1,
            "occurred_at": at_time(1),
            "actor": "alice",
            "causation_id": "cmd-1",
            "data": {"call_id": "c9", "started_by": "alice", "invitees": [], "title": "retro"},
            "prev_hash": "0" * 64,
        }
    )


@pytest.mark.usefixtures("call_started_v2")
def test_an_old_version_is_read_upcast_but_exported_and_verified_as_written() -> None:
    record = old_call_started()
    # State: through the upcaster, as the live projector reads it.
    state = team_state(fold_at([record], until(60), print).views["t9"])
    assert state["calls"][0]["topic"] == "retro"
    # Verify: the hash covers the record as stored, version 1 and `title` included.
    report = verify_lines([orjson.dumps(record)], None, partial=False)
    assert report.ok and report.events == 1
    # Export: the bytes as on the topic, not an upcast copy.

    class One:
        def value(self) -> bytes:
            return orjson.dumps(record)

        def key(self) -> bytes:
            return b"t9"

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return 0

    class Written(list[bytes]):
        def write(self, payloads: list[bytes]) -> None:
            self.extend(payloads)

        def close(self) -> None:
            pass

    written = Written()
    exporter = Exporter(Bounds(), [0], written, print)
    exporter.feed([One()])
    exporter.close([0])
    exporter.finish()
    assert written == [orjson.dumps(record)]
