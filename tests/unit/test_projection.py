"""The read-model projection: given the records a decider really seals, then the views."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.commands import (
    AllocateRoom,
    CommandPayload,
    EndCall,
    JoinCall,
    LeaveCall,
    ReleaseRoom,
    ReportSpeaking,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.envelope import seal
from schemas.events import Event, ParticipantJoined, RoomAllocated, SpeakingChanged
from streams.domain import TeamState, decide_and_seal, seal_events
from streams.domain.testing import TEAM, at_time, command
from streams.projection import (
    Change,
    TeamView,
    UnusableRecord,
    calls_json,
    changes_horizon,
    fold_views,
    presence_json,
    project,
    snapshot_json,
    without_settled_calls,
)

MEDIA = "media:node-1"
URL = "http://node-1/rooms/c1"


class Log:
    """A team's log, grown by deciding commands as the worker does."""

    def __init__(self) -> None:
        self.state = TeamState()
        self.records: list[dict[str, Any]] = []

    def run(self, actor: str, payload: CommandPayload, at: float = 0.0) -> list[dict[str, Any]]:
        records, self.state = decide_and_seal(self.state, command(actor, payload, at=at))
        self.records += records
        return records

    def forced(self, *events: Event, at: float = 0.0) -> list[dict[str, Any]]:
        """Records of events a decider would not emit (for the projection's totality)."""
        records, self.state = seal_events(self.state, command("x", JoinCall("c0"), at=at), events)
        self.records += records
        return records

    def view(self) -> TeamView:
        return fold_views(self.records).get(TEAM, TeamView(team_id=TEAM))


def then(log: Log, records: list[dict[str, Any]]) -> tuple[TeamView, list[Change]]:
    """The view after the log, and the changes its last `records` made."""
    before = fold_views(log.records[: len(log.records) - len(records)]).get(TEAM, TeamView(TEAM))
    changes: list[Change] = []
    for record in records:
        before, made = project(before, record)
        changes += made
    assert before == log.view()
    return before, changes


def a_call(log: Log) -> None:
    log.run("alice", StartCall(call_id="c1", invitees=("bob",), topic="standup"), at=1)
    log.run("bob", JoinCall(call_id="c1"), at=2)


def test_presence_changed_gives_the_member_as_the_contract_shapes_it() -> None:
    log = Log()
    log.run("alice", SetPresence(status="busy", device_id="laptop"), at=1)

    view, changes = then(
        log, log.run("alice", SetPresence(status="available", device_id="phone"), at=2)
    )

    member = {
        "user_id": "alice",
        "status": "available",
        "devices": [
            {"device_id": "laptop", "status": "busy", "last_seen": at_time(1)},
            {"device_id": "phone", "status": "available", "last_seen": at_time(2)},
        ],
        "last_seen": at_time(2),
    }
    assert view.members == {"alice": member}
    assert changes == [Change(2, "presence", member)]
    assert view.seq == 2


def test_call_started_has_the_starter_as_first_participant_and_no_room_yet() -> None:
    log = Log()

    view, changes = then(log, log.run("alice", StartCall("c1", invitees=("bob",), topic="1:1")))

    call = {
        "call_id": "c1",
        "team_id": TEAM,
        "state": "active",
        "topic": "1:1",
        "started_by": "alice",
        "started_at": at_time(0),
        "ended_at": None,
        "participants": [
            {"user_id": "alice", "joined_at": at_time(0), "muted": False, "speaking": False}
        ],
        "media": None,
    }
    assert view.calls == {"c1": call}
    assert changes == [Change(1, "call", call)]


def test_participants_join_in_order_of_joining_then_user_id() -> None:
    log = Log()
    log.run("zed", StartCall(call_id="c1"), at=5)
    log.run("yan", JoinCall(call_id="c1"), at=7)

    view, changes = then(log, log.run("bob", JoinCall(call_id="c1"), at=7))

    joined = [(p["user_id"], p["joined_at"]) for p in view.calls["c1"]["participants"]]
    assert joined == [("zed", at_time(5)), ("bob", at_time(7)), ("yan", at_time(7))]
    assert changes == [Change(3, "call", view.calls["c1"])]


def test_a_participant_who_leaves_is_no_longer_listed() -> None:
    log = Log()
    a_call(log)

    view, changes = then(log, log.run("bob", LeaveCall(call_id="c1"), at=3))

    assert [p["user_id"] for p in view.calls["c1"]["participants"]] == ["alice"]
    assert view.calls["c1"]["state"] == "active"
    assert changes == [Change(3, "call", view.calls["c1"])]


def test_the_last_one_leaving_ends_the_call_with_nobody_in_it() -> None:
    log = Log()
    a_call(log)
    log.run("bob", LeaveCall(call_id="c1"), at=3)

    view, changes = then(log, log.run("alice", LeaveCall(call_id="c1"), at=4))

    call = view.calls["c1"]
    assert (call["state"], call["ended_at"], call["participants"]) == ("ended", at_time(4), [])
    assert [(c.seq, c.kind, c.data["state"]) for c in changes] == [
        (4, "call", "active"),
        (5, "call", "ended"),
    ]


def test_muting_sets_the_flag_and_muting_again_changes_nothing_but_the_position() -> None:
    log = Log()
    a_call(log)
    view, changes = then(log, log.run("bob", SetMuted(call_id="c1", muted=True), at=3))
    assert [p["muted"] for p in view.calls["c1"]["participants"]] == [False, True]
    assert changes == [Change(3, "call", view.calls["c1"])]

    again, none = then(log, log.run("bob", SetMuted(call_id="c1", muted=True), at=4))

    assert none == []
    assert again.calls == view.calls and again.seq == 4


def test_ending_a_call_ends_it_for_everyone() -> None:
    log = Log()
    a_call(log)

    view, changes = then(log, log.run("bob", EndCall(call_id="c1"), at=9))

    call = view.calls["c1"]
    assert (call["state"], call["ended_at"], call["participants"]) == ("ended", at_time(9), [])
    assert call["started_at"] == at_time(1)
    assert changes == [Change(3, "call", call)]


def test_the_room_is_shown_while_allocated_and_gone_once_released() -> None:
    log = Log()
    a_call(log)
    view, changes = then(
        log, log.run(MEDIA, AllocateRoom(call_id="c1", node="node-1", offer_url=URL))
    )
    assert view.calls["c1"]["media"] == {"offer_url": URL}
    assert changes == [Change(3, "call", view.calls["c1"])]
    log.run("alice", EndCall(call_id="c1"))
    assert log.view().calls["c1"]["media"] == {"offer_url": URL}  # until the tier releases it

    released, changes = then(log, log.run(MEDIA, ReleaseRoom(call_id="c1")))

    assert released.calls["c1"]["media"] is None
    assert changes == [Change(5, "call", released.calls["c1"])]


def test_speaking_sets_the_flag_and_is_a_speaking_change_not_a_call_change() -> None:
    log = Log()
    a_call(log)

    view, changes = then(
        log, log.run(MEDIA, ReportSpeaking(call_id="c1", user_id="bob", speaking=True))
    )

    assert [p["speaking"] for p in view.calls["c1"]["participants"]] == [False, True]
    assert changes == [Change(3, "speaking", {"call_id": "c1", "user_id": "bob", "speaking": True})]


def test_a_rejected_command_moves_the_position_only() -> None:
    log = Log()
    a_call(log)
    before = log.view()

    view, changes = then(log, log.run("carol", LeaveCall(call_id="c1")))

    assert log.records[-1]["type"] == "command.rejected"
    assert changes == []
    assert (view.seq, view.calls, view.members) == (3, before.calls, before.members)


def test_unknown_types_newer_versions_and_broken_data_move_the_position_only() -> None:
    log = Log()
    a_call(log)
    before = log.view()
    template = log.records[-1]
    odd = [
        {**template, "type": "call.recorded", "data": {"call_id": "c1"}},
        {**template, "version": 99},
        {**template, "data": {"call_id": 7}},
        {**template, "event_id": None},
    ]
    view = before
    for seq, record in enumerate(odd, start=3):
        view, changes = project(view, seal({**record, "seq": seq}))
        assert changes == [] and view.seq == seq
    assert (view.calls, view.members) == (before.calls, before.members)


def test_a_record_applied_already_is_skipped() -> None:
    log = Log()
    a_call(log)
    view = log.view()

    for record in log.records:
        again, changes = project(view, record)
        assert again is view and changes == []


def test_events_for_calls_the_view_does_not_have_change_nothing() -> None:
    log = Log()
    log.forced(
        ParticipantJoined(call_id="ghost", user_id="bob"),
        RoomAllocated(call_id="ghost", node="n", offer_url=URL),
        SpeakingChanged(call_id="ghost", user_id="bob", speaking=True),
    )

    assert log.view() == TeamView(team_id=TEAM, seq=3)


def test_a_settled_call_is_changed_by_nothing() -> None:
    log = Log()
    a_call(log)
    log.run("alice", EndCall(call_id="c1"))
    settled = log.view().calls["c1"]
    log.forced(
        ParticipantJoined(call_id="c1", user_id="carol"),
        RoomAllocated(call_id="c1", node="n", offer_url=URL),
        SpeakingChanged(call_id="c1", user_id="bob", speaking=True),
    )
    for payload in (JoinCall("c1"), LeaveCall("c1"), SetMuted("c1", True), ReleaseRoom("c1")):
        log.run("bob", payload)

    assert log.view().calls["c1"] == settled
    assert without_settled_calls(log.view()).calls == {}


def test_records_without_a_team_and_seq_are_refused_and_skipped_by_fold() -> None:
    log = Log()
    a_call(log)
    broken = {**log.records[0], "seq": "1"}

    with pytest.raises(UnusableRecord):
        project(TeamView(team_id=TEAM), broken)
    with pytest.raises(ValueError, match="given to the view of"):
        project(TeamView(team_id="other"), log.records[0])
    assert fold_views([broken, *log.records]) == {TEAM: log.view()}


def test_the_json_of_presence_calls_and_the_snapshot() -> None:
    log = Log()
    log.run("bob", SetPresence(status="away", device_id="d"))
    log.run("alice", SetPresence(status="busy", device_id="d"))
    log.run("carol", StartCall(call_id="c2"), at=5)
    log.run("alice", StartCall(call_id="c9"), at=3)
    log.run("dave", StartCall(call_id="c1"), at=5)
    log.run("dave", EndCall(call_id="c1"), at=6)
    view = log.view()

    presence = presence_json(view)
    assert presence["position"] == "6"
    assert [m["user_id"] for m in presence["members"]] == ["alice", "bob"]
    assert [c["call_id"] for c in calls_json(view)["calls"]] == ["c9", "c1", "c2"]
    assert [c["call_id"] for c in calls_json(view, "active")["calls"]] == ["c9", "c2"]
    assert [c["call_id"] for c in calls_json(view, "ended")["calls"]] == ["c1"]
    assert calls_json(view)["position"] == "6"
    assert snapshot_json(view) == {"presence": presence, "calls": calls_json(view)["calls"]}


def test_changes_are_forgotten_in_steps_far_behind_the_position() -> None:
    assert [changes_horizon(p) for p in (0, 10_999, 11_000, 11_999, 25_500)] == [
        0,
        0,
        1_000,
        1_000,
        15_000,
    ]
