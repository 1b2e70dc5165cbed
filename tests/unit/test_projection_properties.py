"""Properties of the projection over random histories the decider really produced."""

from __future__ import annotations

from typing import Any

from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from schemas.commands import (
    AllocateRoom,
    Command,
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
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import at_time
from streams.projection import Change, TeamView, fold_views, project, without_settled_calls

URL = "http://node-1/rooms/c1"

USERS = st.sampled_from(["ann", "bob", "cat"])
CALLS = st.sampled_from(["c1", "c2"])
PAYLOADS: st.SearchStrategy[CommandPayload] = st.one_of(
    st.builds(StartCall, call_id=CALLS),
    st.builds(JoinCall, call_id=CALLS),
    st.builds(LeaveCall, call_id=CALLS),
    st.builds(EndCall, call_id=CALLS),
    st.builds(SetMuted, call_id=CALLS, muted=st.booleans()),
    st.builds(SetPresence, status=st.sampled_from(["available", "away"]), device_id=CALLS),
    st.builds(AllocateRoom, call_id=CALLS, node=st.just("n1"), offer_url=st.just(URL)),
    st.builds(ReleaseRoom, call_id=CALLS),
    st.builds(ReportSpeaking, call_id=CALLS, user_id=USERS, speaking=st.booleans()),
)
STEPS = st.lists(st.tuples(USERS, PAYLOADS, st.sampled_from(["t1", "t2"])), max_size=40)


def history(steps: list[Any]) -> tuple[list[dict[str, Any]], dict[str, TeamState]]:
    states: dict[str, TeamState] = {}
    records: list[dict[str, Any]] = []
    for index, (actor, payload, team) in enumerate(steps):
        each = Command(f"k{index}", team, actor, at_time(index), payload)
        new, states[team] = decide_and_seal(states.get(team, TeamState()), each)
        records += new
    return records, states


def stepwise(records: list[dict[str, Any]], prune: bool = False) -> tuple[dict[str, TeamView], Any]:
    views: dict[str, TeamView] = {}
    changes: list[Change] = []
    for record in records:
        view, made = project(views.get(record["team_id"], TeamView(record["team_id"])), record)
        views[record["team_id"]] = without_settled_calls(view) if prune else view
        changes += made
    return views, changes


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS)
def test_fold_views_is_stepwise_project_and_agrees_with_the_decider(steps: list[Any]) -> None:
    records, states = history(steps)

    views = fold_views(records)

    assert views == stepwise(records)[0]
    for team, state in states.items():
        assert views[team].seq == state.seq
        muted = {
            k: {p["user_id"]: p["muted"] for p in c["participants"]}
            for k, c in views[team].calls.items()
            if c["state"] == "active"
        }
        assert muted == {k: call.participants for k, call in state.calls.items()}
        rooms = {k: c["media"]["offer_url"] for k, c in views[team].calls.items() if c["media"]}
        assert rooms == {k: room.offer_url for k, room in state.rooms.items()}


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS, st.data())
def test_records_read_twice_after_a_crash_change_nothing_twice(steps: list[Any], data: Any) -> None:
    records, _ = history(steps)
    cut = data.draw(st.integers(0, len(records)))
    back = data.draw(st.integers(0, cut))
    replayed = records[:cut] + records[back:]  # a crash at `cut` re-reads from offset `back`

    assert stepwise(replayed) == stepwise(records)
    assert stepwise(records, prune=True)[1] == stepwise(records)[1]
