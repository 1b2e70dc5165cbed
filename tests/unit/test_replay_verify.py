"""`replay verify`: chains of an exported file, and read models from the log against live ones."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from replay.bounds import ReplayError
from replay.diff import ABSENT, EMPTY, Difference, Snapshot, diff_team, snapshot
from replay.verify import LiveCheck, verify_lines
from schemas.commands import CommandPayload, JoinCall, SetPresence, StartCall
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command
from streams.projection import fold_views


def decided(team: str = "t1") -> list[dict[str, Any]]:
    """A team's records as the worker seals them."""
    state, records = TeamState(), []
    steps: list[tuple[str, CommandPayload]] = [
        ("alice", SetPresence(status="busy", device_id="laptop")),
        ("alice", StartCall(call_id=f"{team}-c1", invitees=("bob",))),
        ("bob", JoinCall(call_id=f"{team}-c1")),
        ("bob", SetPresence(status="available", device_id="phone")),
    ]
    for at, (actor, payload) in enumerate(steps):
        made, state = decide_and_seal(state, command(actor, payload, at=at, team_id=team))
        records += made
    return records


def lines(records: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(record) for record in records]


def test_an_intact_export_verifies() -> None:
    report = verify_lines(lines(decided("t1") + decided("t2")), None, partial=False)
    assert report.ok and report.events == 8 and report.teams == {"t1", "t2"}


def test_one_altered_field_names_the_event_at_fault() -> None:
    records = decided()
    records[2] = {**records[2], "data": {**records[2]["data"], "user_id": "mallory"}}
    report = verify_lines(lines(records), None, partial=False)
    assert not report.ok
    assert report.problems == [
        f"event {records[2]['event_id']} (team t1, seq 3, line 3): bad_hash: "
        "hash does not match the record's content"
    ]


def test_a_removed_event_is_a_seq_gap() -> None:
    records = decided()
    del records[1]
    (problem,) = verify_lines(lines(records), None, partial=False).problems
    assert problem.startswith(f"event {records[1]['event_id']} (team t1, seq 3, line 2): seq_gap")
    assert "seq 2 missing" in problem


def test_a_file_starting_mid_log_verifies_with_partial_only() -> None:
    tail = lines(decided()[2:])
    assert "seq 1..2 missing" in verify_lines(tail, None, partial=False).problems[0]
    assert verify_lines(tail, None, partial=True).ok


def test_one_team_of_a_file_and_lines_that_are_not_records() -> None:
    report = verify_lines(
        [b"", b"{oops", b"[1]", *lines(decided("t1") + decided("t2"))], "t2", partial=False
    )
    assert report.events == 4 and report.teams == {"t2"}
    not_json, not_an_object = report.problems
    assert not_json.startswith("line 2: not JSON (")
    assert not_an_object == "line 3: not a JSON object"
    with pytest.raises(ReplayError, match="no events of team t3"):
        verify_lines(lines(decided("t1")), "t3", partial=False)


def test_equal_read_models_have_no_difference() -> None:
    view = fold_views(decided())["t1"]
    assert diff_team("t1", snapshot(view), snapshot(view)) == []


def test_differences_name_team_entity_field_and_both_values() -> None:
    log = snapshot(fold_views(decided())["t1"])
    member = {**log.members["bob"], "status": "away"}
    call = dict(log.calls["t1-c1"])
    call["participants"] = call["participants"][:1]
    call.pop("topic")
    live = Snapshot(log.seq, {**log.members, "bob": member, "zed": {"x": 1}}, {"t1-c1": call})
    found = diff_team("t1", log, live)
    both = (log.calls["t1-c1"]["participants"], call["participants"])
    assert found == [
        Difference("t1", "member bob", "status", "available", "away"),
        Difference("t1", "member zed", "(whole)", ABSENT, {"x": 1}),
        Difference("t1", "call t1-c1", "participants", *both),
        Difference("t1", "call t1-c1", "topic", None, ABSENT),
    ]
    assert str(found[0]) == 'team t1 member bob status: log "available", live "away"'
    assert str(found[3]) == "team t1 call t1-c1 topic: log null, live absent"


def test_a_position_difference_and_nested_fields() -> None:
    log = Snapshot(3, {}, {"c": {"media": {"offer_url": "a"}}})
    live = Snapshot(4, {}, {"c": {"media": {"offer_url": "b"}}})
    assert diff_team("t", log, live) == [
        Difference("t", "position", "seq", 3, 4),
        Difference("t", "call c", "media.offer_url", "a", "b"),
    ]


class Msg:
    def __init__(self, record: dict[str, Any], offset: int) -> None:
        self._record, self._offset = record, offset

    def value(self) -> bytes:
        return orjson.dumps(self._record)

    def key(self) -> bytes:
        return str(self._record["team_id"]).encode()

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


def check(live: dict[str, Snapshot], records: list[dict[str, Any]]) -> LiveCheck:
    checker = LiveCheck(live, None, partial=False)
    checker.feed([Msg(record, offset) for offset, record in enumerate(records)])
    checker.finish()
    return checker


def test_the_log_is_compared_at_the_live_position_and_lag_is_only_noted() -> None:
    records = decided()
    behind = snapshot(fold_views(records[:2])["t1"])
    report = check({"t1": behind}, records).report
    assert report.ok and report.differences == []
    # Recorded for verify_topic, which waits a bound for it to catch up, then fails.
    assert report.behind == {"t1": (2, 4)}
    assert report.notes == [
        "team t1: live read model at seq 2, log at seq 4 (the projector is behind); "
        "compared at seq 2"
    ]


def test_a_live_model_that_disagrees_or_runs_ahead_fails() -> None:
    records = decided()
    wrong = snapshot(fold_views(records)["t1"])
    wrong.members["alice"]["status"] = "away"
    ahead = Snapshot(9, {}, {})
    report = check({"t1": wrong, "t9": ahead}, records).report
    assert not report.ok
    assert [str(d) for d in report.differences] == [
        'team t1 member alice status: log "busy", live "away"',
        "team t9 position seq: log 0, live 9",
    ]
    assert EMPTY.seq == 0


def test_a_team_without_live_rows_is_noted_not_failed() -> None:
    report = check({}, decided()).report
    assert report.ok
    assert report.notes == ["team t1: no live read model (log at seq 4); not compared"]
