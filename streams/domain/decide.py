"""`decide(state, command)`: the events a command causes, from the team's state alone.

Pure: no clock (the command's `received_at` is the time), no randomness, no I/O, so deciding
the same command from the same state always gives the same events. A command already decided
(its id is among the state's recent decisions) gives none. Every other command gives at least
one event (a rejection is an event too), except an expiry tick that changes nothing (the
timer's ticks are not answered to anyone) and a heartbeat that changes nothing a person sees
(it refreshes a lease, `presence.heard`, and is answered `accepted` with no events).
"""

from __future__ import annotations

from schemas.clock import parse_millis
from schemas.commands import (
    AllocateRoom,
    Command,
    EndCall,
    ExpirePresence,
    JoinCall,
    LeaveCall,
    RecordHeartbeat,
    ReleaseRoom,
    ReportSpeaking,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.events import Event
from streams.domain import calls, media, presence
from streams.domain.state import TeamState

#: Seconds without a heartbeat before a device goes offline (CHORUS_PRESENCE_TTL).
DEFAULT_PRESENCE_TTL = 30.0


def decide(
    state: TeamState, command: Command, *, presence_ttl: float = DEFAULT_PRESENCE_TTL
) -> list[Event]:
    """The events `command` causes in a team with this state ([] if already decided)."""
    if command.command_id in state.decided:
        return []
    now_ms = parse_millis(command.received_at)
    match command.data:
        case SetPresence(status=status, device_id=device_id, region=region):
            return presence.set_presence(state, command.actor, device_id, status, now_ms, region)
        case RecordHeartbeat(device_id=device_id):
            return presence.heartbeat(state, command.actor, device_id, now_ms)
        case ExpirePresence(ttl_seconds=ttl_seconds):
            ttl_ms = round(1000 * (presence_ttl if ttl_seconds is None else ttl_seconds))
            return presence.expire(state, now_ms, ttl_ms)
        case StartCall() as payload:
            return calls.start_call(state, command, payload)
        case JoinCall() as payload:
            return calls.join_call(state, command, payload)
        case LeaveCall() as payload:
            return calls.leave_call(state, command, payload)
        case SetMuted() as payload:
            return calls.set_muted(state, command, payload)
        case EndCall() as payload:
            return calls.end_call(state, command, payload)
        case AllocateRoom() as payload:
            return media.allocate_room(state, command, payload)
        case ReleaseRoom() as payload:
            return media.release_room(state, command, payload)
        case ReportSpeaking() as payload:
            return media.report_speaking(state, command, payload)
    raise TypeError(f"no decider for {type(command.data).__name__}")  # a payload not wired here
