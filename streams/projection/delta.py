"""What one event changes in a team's read models: one member or one call, as its new JSON.

`delta` is the projection's one statement of each event's effect; `project` applies it to a new
view (sharing the rest), `TeamFold` applies it in place. An event naming a call the team does
not have, or one that leaves a call's JSON as it was, changes nothing (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from schemas.events import (
    CallEnded,
    CallStarted,
    CommandRejected,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    PresenceChanged,
    RoomAllocated,
    RoomReleased,
    SpeakingChanged,
)
from streams.projection import calls

Calls = Mapping[str, dict[str, Any]]

# What a fold up to an instant may skip (`streams.projection.fold.LastChanges`), as `delta` has it:
#: A member's whole entry, whatever it was: the member's next one overwrites it.
MEMBER_EVENTS = (PresenceChanged,)
#: Only the participants of an active call (of an ended or unknown one: nothing), and on no
#: other field of the call: `call.ended` and `call.started` of that call overwrite them all.
PARTICIPANT_EVENTS = (
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    SpeakingChanged,
)
#: Nothing but the position.
UNCHANGING_EVENTS = (CommandRejected,)


class Delta(NamedTuple):
    """One entry of the view replaced, and the live change that reports it."""

    member: bool  # True: `members[key]` (a user id); False: `calls[key]` (a call id)
    key: str
    value: dict[str, Any]  # the entry's new JSON
    kind: str  # the change's kind: `presence`, `call` or `speaking`
    data: dict[str, Any]  # the change's data


def delta(team_id: str, known: Calls, event: Event, at: str) -> Delta | None:
    """What `event` of `team_id`, which occurred at `at`, changes, given the team's calls.

    The cases are in the order of how often a day's log holds them (the first match wins, and
    no event matches two).
    """
    match event:
        case SpeakingChanged():
            return _speaking(known, event)
        case PresenceChanged():
            member = _member(event)
            return Delta(True, event.user_id, member, "presence", member)
        case CallStarted():
            started = calls.started(team_id, event, at)
            return Delta(False, event.call_id, started, "call", started)
    call_id: str | None = getattr(event, "call_id", None)
    call = None if call_id is None else known.get(call_id)
    if call is None:  # no such call, or not an event of a call (command.rejected)
        return None
    match event:
        case ParticipantMuted(user_id=user_id, muted=muted):
            after = calls.flagged(call, user_id, "muted", muted)
        case ParticipantJoined(user_id=user_id):
            after = calls.joined(call, user_id, at)
        case ParticipantLeft(user_id=user_id):
            after = calls.left(call, user_id)
        case CallEnded():
            after = calls.ended(call, at)
        case RoomAllocated(offer_url=offer_url):
            after = calls.with_room(call, offer_url)
        case RoomReleased():
            after = calls.with_room(call, None)
        case _:  # command.rejected: its position only
            return None
    if after is call:
        return None
    return Delta(False, str(call_id), after, "call", after)


def _member(event: PresenceChanged) -> dict[str, Any]:
    # A member stays listed, offline, even once all their devices are forgotten.
    return {
        "user_id": event.user_id,
        "status": event.status,
        "devices": [
            {"device_id": d.device_id, "status": d.status, "last_seen": d.last_seen}
            for d in event.devices
        ],
        "last_seen": event.last_seen,
    }


def _speaking(known: Calls, event: SpeakingChanged) -> Delta | None:
    call = known.get(event.call_id)
    if call is None:
        return None
    after = calls.flagged(call, event.user_id, "speaking", event.speaking)
    if after is call:
        return None
    data = {"call_id": event.call_id, "user_id": event.user_id, "speaking": event.speaking}
    return Delta(False, event.call_id, after, "speaking", data)
