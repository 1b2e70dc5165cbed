"""`evolve(state, event)`: the state after one more event of the team's log.

Total by design: an event that does not fit the state (which a decider never emits) leaves it
unchanged rather than failing, so that folding a log always finishes. `seq`, `last_hash` and
the decided command ids are advanced by `streams.domain.sealing`, which sees the envelope.
"""

from __future__ import annotations

from msgspec.structs import replace

from schemas.events import (
    CallEnded,
    CallStarted,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    PresenceChanged,
    RoomAllocated,
    RoomReleased,
)
from streams.domain.presence import apply_presence_changed
from streams.domain.state import ActiveCall, Room, TeamState, remember_ended


def evolve(state: TeamState, event: Event) -> TeamState:
    """The state with `event` applied (events that change nothing return `state` itself)."""
    match event:
        case PresenceChanged():
            return apply_presence_changed(state, event)
        case CallStarted():
            return _call_started(state, event)
        case ParticipantJoined():
            return _participant_joined(state, event)
        case ParticipantLeft():
            return _participant_left(state, event)
        case ParticipantMuted():
            return _participant_muted(state, event)
        case CallEnded():
            return _call_ended(state, event)
        case RoomAllocated():
            room = Room(node=event.node, offer_url=event.offer_url)
            return replace(state, rooms={**state.rooms, event.call_id: room})
        case RoomReleased():
            rooms = {k: v for k, v in state.rooms.items() if k != event.call_id}
            return replace(state, rooms=rooms)
        case _:  # command.rejected, media.speaking: nothing a decision depends on
            return state


def _call_started(state: TeamState, event: CallStarted) -> TeamState:
    call = ActiveCall(
        call_id=event.call_id,
        started_by=event.started_by,
        topic=event.topic,
        invitees=tuple(event.invitees),
        participants={event.started_by: False},
    )
    return replace(
        state,
        calls={**state.calls, event.call_id: call},
        user_calls={**state.user_calls, event.started_by: event.call_id},
    )


def _participant_joined(state: TeamState, event: ParticipantJoined) -> TeamState:
    call = state.calls.get(event.call_id)
    if call is None:
        return state
    return _with_call(
        replace(state, user_calls={**state.user_calls, event.user_id: event.call_id}),
        replace(call, participants={**call.participants, event.user_id: False}),
    )


def _participant_left(state: TeamState, event: ParticipantLeft) -> TeamState:
    call = state.calls.get(event.call_id)
    if call is None:
        return state
    participants = {k: v for k, v in call.participants.items() if k != event.user_id}
    user_calls = dict(state.user_calls)
    if user_calls.get(event.user_id) == event.call_id:
        del user_calls[event.user_id]
    return _with_call(
        replace(state, user_calls=user_calls), replace(call, participants=participants)
    )


def _participant_muted(state: TeamState, event: ParticipantMuted) -> TeamState:
    call = state.calls.get(event.call_id)
    if call is None or event.user_id not in call.participants:
        return state
    return _with_call(
        state, replace(call, participants={**call.participants, event.user_id: event.muted})
    )


def _call_ended(state: TeamState, event: CallEnded) -> TeamState:
    call = state.calls.get(event.call_id)
    if call is None:
        return state
    calls = {k: v for k, v in state.calls.items() if k != event.call_id}
    user_calls = {k: v for k, v in state.user_calls.items() if v != event.call_id}
    return replace(
        state,
        calls=calls,
        user_calls=user_calls,
        ended_calls=remember_ended(state.ended_calls, event.call_id),
    )


def _with_call(state: TeamState, call: ActiveCall) -> TeamState:
    return replace(state, calls={**state.calls, call.call_id: call})
