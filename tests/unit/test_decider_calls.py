"""Call rules of the decider: given commands, when a command, then events."""

from __future__ import annotations

from schemas.commands import EndCall, JoinCall, LeaveCall, SetMuted, StartCall
from schemas.events import (
    CallEnded,
    CallStarted,
    CommandRejected,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
)
from streams.domain.state import ENDED_CALLS_MAX, TeamState, remember_ended
from streams.domain.testing import command, given, when


def start(call_id: str, *invitees: str, topic: str | None = None) -> StartCall:
    return StartCall(call_id=call_id, invitees=invitees, topic=topic)


def rejection(cmd_id: str, cmd_type: str, reason: str, call_id: str | None = None) -> list[object]:
    return [
        CommandRejected(command_id=cmd_id, command_type=cmd_type, reason=reason, call_id=call_id)
    ]


def test_the_starter_is_the_first_participant_and_invitees_are_not_yet() -> None:
    events, state = when(TeamState(), command("alice", start("c1", "bob", topic="1:1")))

    assert events == [CallStarted(call_id="c1", started_by="alice", invitees=("bob",), topic="1:1")]
    assert state.calls["c1"].participants == {"alice": False}
    assert state.user_calls == {"alice": "c1"}


def test_invitees_are_listed_once_and_never_include_the_starter() -> None:
    events, _ = when(TeamState(), command("alice", start("c1", "bob", "alice", "bob", "eve")))

    assert events == [
        CallStarted(call_id="c1", started_by="alice", invitees=("bob", "eve"), topic=None)
    ]


def test_starting_while_in_a_call_is_rejected_with_the_existing_call() -> None:
    state = given(command("alice", start("c1")))
    second = command("alice", start("c2"))

    events, after = when(state, second)

    assert events == rejection(second.command_id, "call.start", "already_in_call", "c1")
    assert set(after.calls) == {"c1"}


def test_two_starts_at_the_same_instant_give_one_call() -> None:
    click, double_click = (
        command("alice", start("c1"), at=1),
        command("alice", start("c2"), at=1),
    )
    state = given(click, double_click)

    assert list(state.calls) == ["c1"]
    assert state.seq == 2  # the second start has its outcome recorded: a rejection


def test_a_participant_of_another_call_cannot_start_one() -> None:
    state = given(command("alice", start("c1")), command("bob", JoinCall(call_id="c1")))
    bob_starts = command("bob", start("c2"))

    events, _ = when(state, bob_starts)

    assert events == rejection(bob_starts.command_id, "call.start", "already_in_call", "c1")


def test_reusing_a_call_id_is_rejected() -> None:
    state = given(command("alice", start("c1")))
    again = command("bob", start("c1"))

    events, _ = when(state, again)

    assert events == rejection(again.command_id, "call.start", "call_exists")


def test_reusing_the_id_of_an_ended_call_is_rejected() -> None:
    state = given(command("alice", start("c1")), command("alice", EndCall(call_id="c1")))
    again = command("alice", start("c1"))

    events, _ = when(state, again)

    assert events == rejection(again.command_id, "call.start", "call_exists")


def test_an_invitee_becomes_a_participant_when_joining() -> None:
    state = given(command("alice", start("c1", "bob")))

    events, after = when(state, command("bob", JoinCall(call_id="c1")))

    assert events == [ParticipantJoined(call_id="c1", user_id="bob")]
    assert after.calls["c1"].participants == {"alice": False, "bob": False}
    assert after.user_calls["bob"] == "c1"


def test_any_member_may_join_without_an_invitation() -> None:
    state = given(command("alice", start("c1")))

    events, _ = when(state, command("carol", JoinCall(call_id="c1")))

    assert events == [ParticipantJoined(call_id="c1", user_id="carol")]


def test_joining_an_unknown_call_is_rejected() -> None:
    join = command("bob", JoinCall(call_id="nope"))

    events, _ = when(TeamState(), join)

    assert events == rejection(join.command_id, "call.join", "unknown_call")


def test_a_call_of_another_team_is_unknown_here() -> None:
    other_team = given(command("alice", start("c1"), team_id="team-2"))
    assert "c1" in other_team.calls
    join = command("bob", JoinCall(call_id="c1"), team_id="team-1")

    events, _ = when(TeamState(), join)

    assert events == rejection(join.command_id, "call.join", "unknown_call")


def test_joining_an_ended_call_is_rejected() -> None:
    state = given(command("alice", start("c1")), command("alice", LeaveCall(call_id="c1")))
    join = command("bob", JoinCall(call_id="c1"))

    events, _ = when(state, join)

    assert events == rejection(join.command_id, "call.join", "call_ended")


def test_joining_twice_is_rejected_as_already_joined() -> None:
    state = given(command("alice", start("c1")), command("bob", JoinCall(call_id="c1")))
    again = command("bob", JoinCall(call_id="c1"))

    events, after = when(state, again)

    assert events == rejection(again.command_id, "call.join", "already_joined")
    assert after.calls == state.calls


def test_the_starter_joining_their_own_call_is_already_joined() -> None:
    state = given(command("alice", start("c1")))
    join = command("alice", JoinCall(call_id="c1"))

    events, _ = when(state, join)

    assert events == rejection(join.command_id, "call.join", "already_joined")


def test_joining_while_in_another_call_is_rejected_with_that_call() -> None:
    state = given(command("alice", start("c1")), command("bob", start("c2")))
    join = command("bob", JoinCall(call_id="c1"))

    events, _ = when(state, join)

    assert events == rejection(join.command_id, "call.join", "already_in_call", "c2")


def test_leaving_frees_the_user_for_another_call() -> None:
    state = given(command("alice", start("c1")), command("bob", JoinCall(call_id="c1")))

    events, after = when(state, command("bob", LeaveCall(call_id="c1")))

    assert events == [ParticipantLeft(call_id="c1", user_id="bob")]
    assert after.calls["c1"].participants == {"alice": False}
    assert "bob" not in after.user_calls
    assert when(after, command("bob", start("c2")))[0][0] == CallStarted(
        call_id="c2", started_by="bob", invitees=(), topic=None
    )


def test_leaving_a_call_one_is_not_in_is_rejected() -> None:
    state = given(command("alice", start("c1")))
    leave = command("bob", LeaveCall(call_id="c1"))

    events, _ = when(state, leave)

    assert events == rejection(leave.command_id, "call.leave", "not_in_call")


def test_leaving_unknown_and_ended_calls_is_rejected() -> None:
    state = given(command("alice", start("c1")), command("alice", EndCall(call_id="c1")))
    unknown, ended = (
        command("a", LeaveCall(call_id="zz")),
        command("alice", LeaveCall(call_id="c1")),
    )

    assert when(state, unknown)[0] == rejection(unknown.command_id, "call.leave", "unknown_call")
    assert when(state, ended)[0] == rejection(ended.command_id, "call.leave", "call_ended")


def test_the_last_participant_leaving_ends_the_call() -> None:
    state = given(command("alice", start("c1")), command("bob", JoinCall(call_id="c1")))
    state = given(command("alice", LeaveCall(call_id="c1")), state=state)

    events, after = when(state, command("bob", LeaveCall(call_id="c1")))

    assert events == [
        ParticipantLeft(call_id="c1", user_id="bob"),
        CallEnded(call_id="c1", reason="last_participant_left"),
    ]
    assert after.calls == {} and after.user_calls == {}
    assert "c1" in after.ended_calls


def test_muting_and_unmuting_oneself() -> None:
    state = given(command("alice", start("c1")))

    muted, state = when(state, command("alice", SetMuted(call_id="c1", muted=True)))
    assert muted == [ParticipantMuted(call_id="c1", user_id="alice", muted=True)]
    assert state.calls["c1"].participants == {"alice": True}

    unmuted, state = when(state, command("alice", SetMuted(call_id="c1", muted=False)))
    assert unmuted == [ParticipantMuted(call_id="c1", user_id="alice", muted=False)]
    assert state.calls["c1"].participants == {"alice": False}


def test_only_a_participant_may_mute() -> None:
    state = given(command("alice", start("c1")))
    mute = command("bob", SetMuted(call_id="c1", muted=True))

    events, _ = when(state, mute)

    assert events == rejection(mute.command_id, "call.mute", "not_in_call")


def test_muting_in_unknown_or_ended_calls_is_rejected() -> None:
    state = given(command("alice", start("c1")), command("alice", EndCall(call_id="c1")))
    unknown = command("alice", SetMuted(call_id="zz", muted=True))
    ended = command("alice", SetMuted(call_id="c1", muted=True))

    assert when(state, unknown)[0] == rejection(unknown.command_id, "call.mute", "unknown_call")
    assert when(state, ended)[0] == rejection(ended.command_id, "call.mute", "call_ended")


def test_a_participant_ends_the_call_for_everyone() -> None:
    state = given(
        command("alice", start("c1")),
        command("bob", JoinCall(call_id="c1")),
        command("carol", JoinCall(call_id="c1")),
    )

    events, after = when(state, command("bob", EndCall(call_id="c1")))

    assert events == [CallEnded(call_id="c1", reason="ended_by_participant")]
    assert after.calls == {} and after.user_calls == {}


def test_a_non_participant_cannot_end_a_call() -> None:
    state = given(command("alice", start("c1")))
    end = command("bob", EndCall(call_id="c1"))

    events, after = when(state, end)

    assert events == rejection(end.command_id, "call.end", "not_in_call")
    assert "c1" in after.calls


def test_ending_unknown_and_ended_calls_is_rejected() -> None:
    state = given(command("alice", start("c1")), command("alice", EndCall(call_id="c1")))
    unknown, ended = (
        command("alice", EndCall(call_id="zz")),
        command("alice", EndCall(call_id="c1")),
    )

    assert when(state, unknown)[0] == rejection(unknown.command_id, "call.end", "unknown_call")
    assert when(state, ended)[0] == rejection(ended.command_id, "call.end", "call_ended")


def test_ended_calls_are_remembered_up_to_a_bound() -> None:
    ended: tuple[str, ...] = ()
    for index in range(ENDED_CALLS_MAX + 1):
        ended = remember_ended(ended, f"c{index}")

    assert len(ended) == ENDED_CALLS_MAX
    assert "c0" not in ended and ended[-1] == f"c{ENDED_CALLS_MAX}"
