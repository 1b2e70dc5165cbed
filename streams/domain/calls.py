"""Call rules: who may start, join, leave, mute and end a team's calls.

- The starter is the first participant; invitees become participants only when they join.
- A member is in at most one active call of the team: starting or joining while in one is
  rejected `already_in_call`, naming that call. Two starts at once give one call, because the
  team's commands are decided one after the other and the second finds the first.
- A call id the team never had (another team's call, or one ended long ago) is `unknown_call`;
  an ended one is `call_ended`.
- Joining a call one is already in is rejected `already_joined` (not silently accepted): every
  command then has exactly one recorded outcome.
- Leave, mute and end are for participants only (`not_in_call`); the last participant leaving
  ends the call (participant_left, then call.ended `last_participant_left`); ending it is
  call.ended `ended_by_participant` alone, with no participant_left for those still in it.
"""

from __future__ import annotations

from schemas.commands import Command, EndCall, JoinCall, LeaveCall, SetMuted, StartCall
from schemas.events import (
    CallEnded,
    CallStarted,
    CommandRejected,
    EndReason,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    RejectionReason,
)
from streams.domain.state import ActiveCall, TeamState


def rejected(command: Command, reason: str, call_id: str | None = None) -> CommandRejected:
    """The command.rejected answering `command`."""
    return CommandRejected(
        command_id=command.command_id, command_type=command.type, reason=reason, call_id=call_id
    )


def call_problem(state: TeamState, call_id: str) -> str | None:
    """Why `call_id` cannot be acted on (`unknown_call`, `call_ended`), or None if active."""
    if call_id in state.calls:
        return None
    if call_id in state.ended_calls:
        return RejectionReason.CALL_ENDED
    return RejectionReason.UNKNOWN_CALL


def start_call(state: TeamState, command: Command, start: StartCall) -> list[Event]:
    """call.start: a new call with the actor in it, unless they are already in one."""
    current = state.user_calls.get(command.actor)
    if current is not None:
        return [rejected(command, RejectionReason.ALREADY_IN_CALL, current)]
    if start.call_id in state.calls or start.call_id in state.ended_calls:
        return [rejected(command, RejectionReason.CALL_EXISTS)]
    # Each invitee once, in the order given; the starter is a participant, not an invitee.
    invitees = tuple(dict.fromkeys(u for u in start.invitees if u != command.actor))
    return [
        CallStarted(
            call_id=start.call_id, started_by=command.actor, invitees=invitees, topic=start.topic
        )
    ]


def join_call(state: TeamState, command: Command, join: JoinCall) -> list[Event]:
    """call.join: the actor becomes a participant of an active call."""
    problem = call_problem(state, join.call_id)
    if problem is not None:
        return [rejected(command, problem)]
    current = state.user_calls.get(command.actor)
    if current == join.call_id:
        return [rejected(command, RejectionReason.ALREADY_JOINED)]
    if current is not None:
        return [rejected(command, RejectionReason.ALREADY_IN_CALL, current)]
    return [ParticipantJoined(call_id=join.call_id, user_id=command.actor)]


def leave_call(state: TeamState, command: Command, leave: LeaveCall) -> list[Event]:
    """call.leave: the actor leaves; the call ends if nobody is left."""
    call = _participant_call(state, command, leave.call_id)
    if isinstance(call, CommandRejected):
        return [call]
    left = ParticipantLeft(call_id=leave.call_id, user_id=command.actor)
    if len(call.participants) > 1:
        return [left]
    return [left, CallEnded(call_id=leave.call_id, reason=EndReason.LAST_PARTICIPANT_LEFT)]


def set_muted(state: TeamState, command: Command, mute: SetMuted) -> list[Event]:
    """call.mute: the actor mutes or unmutes themselves (recorded even if unchanged)."""
    call = _participant_call(state, command, mute.call_id)
    if isinstance(call, CommandRejected):
        return [call]
    return [ParticipantMuted(call_id=mute.call_id, user_id=command.actor, muted=mute.muted)]


def end_call(state: TeamState, command: Command, end: EndCall) -> list[Event]:
    """call.end: a participant ends the call for everyone."""
    call = _participant_call(state, command, end.call_id)
    if isinstance(call, CommandRejected):
        return [call]
    return [CallEnded(call_id=end.call_id, reason=EndReason.ENDED_BY_PARTICIPANT)]


def _participant_call(
    state: TeamState, command: Command, call_id: str
) -> ActiveCall | CommandRejected:
    """The active call the actor takes part in, or the rejection saying why not."""
    problem = call_problem(state, call_id)
    if problem is not None:
        return rejected(command, problem)
    call = state.calls[call_id]
    if command.actor not in call.participants:
        return rejected(command, RejectionReason.NOT_IN_CALL)
    return call
