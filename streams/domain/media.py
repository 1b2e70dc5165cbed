"""Media rules: the media tier records rooms and speaking through the team's decider.

Media events go through the decider like any other, because only the decider numbers a
team's events (`seq`). The media tier sends `media.allocate_room` when it sees call.started,
`media.release_room` when it sees call.ended, and `media.report_speaking` as the mixer hears.
"""

from __future__ import annotations

from schemas.commands import AllocateRoom, Command, ReleaseRoom, ReportSpeaking
from schemas.events import Event, RejectionReason, RoomAllocated, RoomReleased, SpeakingChanged
from streams.domain.calls import call_problem, rejected
from streams.domain.state import TeamState


def allocate_room(state: TeamState, command: Command, room: AllocateRoom) -> list[Event]:
    """media.allocate_room: an active call gets (or, after a node failed, moves to) a room.

    On an ended call it is rejected `call_ended`, telling the media tier to free the room.
    """
    problem = call_problem(state, room.call_id)
    if problem is not None:
        return [rejected(command, problem)]
    return [RoomAllocated(call_id=room.call_id, node=room.node, offer_url=room.offer_url)]


def release_room(state: TeamState, command: Command, release: ReleaseRoom) -> list[Event]:
    """media.release_room: the call's room is gone (normally after the call ended)."""
    if release.call_id in state.rooms:
        return [RoomReleased(call_id=release.call_id)]
    if call_problem(state, release.call_id) == RejectionReason.UNKNOWN_CALL:
        return [rejected(command, RejectionReason.UNKNOWN_CALL)]
    return [rejected(command, RejectionReason.NO_ROOM)]


def report_speaking(state: TeamState, command: Command, report: ReportSpeaking) -> list[Event]:
    """media.report_speaking: a participant of an active call started or stopped speaking."""
    problem = call_problem(state, report.call_id)
    if problem is not None:
        return [rejected(command, problem)]
    if report.user_id not in state.calls[report.call_id].participants:
        return [rejected(command, RejectionReason.NOT_IN_CALL)]
    return [
        SpeakingChanged(call_id=report.call_id, user_id=report.user_id, speaking=report.speaking)
    ]
