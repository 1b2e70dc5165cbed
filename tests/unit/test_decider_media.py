"""Media rules of the decider: rooms and speaking, recorded through the team's log."""

from __future__ import annotations

from schemas.commands import AllocateRoom, EndCall, JoinCall, ReleaseRoom, ReportSpeaking, StartCall
from schemas.events import CommandRejected, RoomAllocated, RoomReleased, SpeakingChanged
from streams.domain import Room, TeamState
from streams.domain.testing import command, given, when

MEDIA = "media:node-1"


def allocate(call_id: str = "c1", node: str = "node-1") -> AllocateRoom:
    return AllocateRoom(call_id=call_id, node=node, offer_url=f"http://{node}/rooms/{call_id}")


def rejected(cmd_id: str, cmd_type: str, reason: str) -> list[object]:
    return [CommandRejected(command_id=cmd_id, command_type=cmd_type, reason=reason)]


def a_call() -> TeamState:
    return given(command("alice", StartCall(call_id="c1")), command("bob", JoinCall(call_id="c1")))


def test_a_room_allocated_for_an_active_call_is_recorded() -> None:
    events, state = when(a_call(), command(MEDIA, allocate()))

    assert events == [
        RoomAllocated(call_id="c1", node="node-1", offer_url="http://node-1/rooms/c1")
    ]
    assert state.rooms == {"c1": Room(node="node-1", offer_url="http://node-1/rooms/c1")}


def test_a_room_may_move_to_another_node() -> None:
    state = given(command(MEDIA, allocate()), state=a_call())

    _, after = when(state, command(MEDIA, allocate(node="node-2")))

    assert after.rooms["c1"].node == "node-2"


def test_a_room_for_an_ended_or_unknown_call_is_rejected() -> None:
    ended = given(command("alice", EndCall(call_id="c1")), state=a_call())
    late, stray = command(MEDIA, allocate()), command(MEDIA, allocate("zz"))

    assert when(ended, late)[0] == rejected(late.command_id, "media.allocate_room", "call_ended")
    assert when(ended, stray)[0] == rejected(
        stray.command_id, "media.allocate_room", "unknown_call"
    )


def test_the_room_of_an_ended_call_is_released() -> None:
    state = given(
        command(MEDIA, allocate()), command("alice", EndCall(call_id="c1")), state=a_call()
    )

    events, after = when(state, command(MEDIA, ReleaseRoom(call_id="c1")))

    assert events == [RoomReleased(call_id="c1")]
    assert after.rooms == {}


def test_releasing_without_a_room_is_rejected() -> None:
    state = a_call()
    no_room, unknown = (
        command(MEDIA, ReleaseRoom(call_id="c1")),
        command(MEDIA, ReleaseRoom(call_id="zz")),
    )

    assert when(state, no_room)[0] == rejected(no_room.command_id, "media.release_room", "no_room")
    assert when(state, unknown)[0] == rejected(
        unknown.command_id, "media.release_room", "unknown_call"
    )


def test_speaking_of_a_participant_is_recorded() -> None:
    events, _ = when(
        a_call(), command(MEDIA, ReportSpeaking(call_id="c1", user_id="bob", speaking=True))
    )

    assert events == [SpeakingChanged(call_id="c1", user_id="bob", speaking=True)]


def test_speaking_of_a_non_participant_or_in_an_ended_call_is_rejected() -> None:
    stranger = command(MEDIA, ReportSpeaking(call_id="c1", user_id="eve", speaking=True))
    ended_state = given(command("alice", EndCall(call_id="c1")), state=a_call())
    late = command(MEDIA, ReportSpeaking(call_id="c1", user_id="bob", speaking=False))

    assert when(a_call(), stranger)[0] == rejected(
        stranger.command_id, "media.report_speaking", "not_in_call"
    )
    assert when(ended_state, late)[0] == rejected(
        late.command_id, "media.report_speaking", "call_ended"
    )
