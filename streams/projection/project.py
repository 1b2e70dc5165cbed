"""`project(view, record)`: the read models after one more record of a team's log.

Total, like the deciders' `evolve`: any record with a team and a `seq` advances the position,
whether or not this code knows its type (a newer type, a newer version, data that breaks its
schema only advance `seq`); an event naming a call the view does not have changes nothing;
text PostgreSQL cannot store (NUL) is projected as U+FFFD (`schemas.text`). A
record at or below the view's `seq` was applied already (a copy written twice after a crash)
and is skipped, so applying a log twice gives what applying it once gives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
    SpeakingChanged,
)
from schemas.mapper import MAPPER, MapperError
from schemas.text import storable
from streams.projection import calls
from streams.projection.view import Change, TeamView

CallUpdate = Callable[[dict[str, Any]], dict[str, Any]]


class UnusableRecord(ValueError):
    """A record without a string `team_id` and a positive integer `seq`: it has no place."""


def record_key(record: Mapping[str, Any]) -> tuple[str, int] | None:
    """`(team_id, seq)` of a record, or None if it has no usable one."""
    team_id, seq = record.get("team_id"), record.get("seq")
    if isinstance(team_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return (team_id, seq) if seq >= 1 else None
    return None


def project(view: TeamView, record: Mapping[str, Any]) -> tuple[TeamView, list[Change]]:
    """The view after `record` (an event envelope as on the topic) and what it changed.

    Raises `UnusableRecord` for a record without a usable `(team_id, seq)` and ValueError
    for one of another team.
    """
    key = record_key(record)
    if key is None:
        raise UnusableRecord(f"no team_id and seq in record {record.get('event_id')!r}")
    team_id, seq = key
    if team_id != view.team_id:
        raise ValueError(f"a record of team {team_id} given to the view of {view.team_id}")
    if seq <= view.seq:
        return view, []
    advanced = replace(view, seq=seq)
    try:
        # Text the tables cannot hold (a NUL written before the edge refused it) is replaced
        # here, so the projector, a rebuild and replay all fold the same storable views.
        recorded = MAPPER.decode_event(storable(record))
    except MapperError:  # unknown type, newer version, broken data: the position still moves
        return advanced, []
    return _apply(advanced, recorded.data, recorded.occurred_at)


def fold_views(records: Iterable[Mapping[str, Any]]) -> dict[str, TeamView]:
    """team_id -> view after every record (in log order; teams may be interleaved).

    Records without a usable `(team_id, seq)` are skipped, as the projector skips them.
    """
    views: dict[str, TeamView] = {}
    for record in records:
        key = record_key(record)
        if key is None:
            continue
        view = views.get(key[0]) or TeamView(team_id=key[0])
        views[key[0]], _ = project(view, record)
    return views


def _apply(view: TeamView, event: Event, at: str) -> tuple[TeamView, list[Change]]:
    match event:
        case PresenceChanged():
            return _presence_changed(view, event)
        case CallStarted():
            call = calls.started(view.team_id, event, at)
            changed = replace(view, calls={**view.calls, event.call_id: call})
            return changed, [Change(view.seq, "call", call)]
        case ParticipantJoined(call_id=call_id, user_id=user_id):
            return _call_changed(view, call_id, lambda c: calls.joined(c, user_id, at))
        case ParticipantLeft(call_id=call_id, user_id=user_id):
            return _call_changed(view, call_id, lambda c: calls.left(c, user_id))
        case ParticipantMuted(call_id=call_id, user_id=user_id, muted=muted):
            return _call_changed(view, call_id, lambda c: calls.flagged(c, user_id, "muted", muted))
        case CallEnded(call_id=call_id):
            return _call_changed(view, call_id, lambda c: calls.ended(c, at))
        case RoomAllocated(call_id=call_id, offer_url=offer_url):
            return _call_changed(view, call_id, lambda c: calls.with_room(c, offer_url))
        case RoomReleased(call_id=call_id):
            return _call_changed(view, call_id, lambda c: calls.with_room(c, None))
        case SpeakingChanged():
            return _speaking_changed(view, event)
        case _:  # command.rejected: its position only
            return view, []


def _presence_changed(view: TeamView, event: PresenceChanged) -> tuple[TeamView, list[Change]]:
    # A member stays listed, offline, even once all their devices are forgotten.
    member = {
        "user_id": event.user_id,
        "status": event.status,
        "devices": [
            {"device_id": d.device_id, "status": d.status, "last_seen": d.last_seen}
            for d in event.devices
        ],
        "last_seen": event.last_seen,
    }
    changed = replace(view, members={**view.members, event.user_id: member})
    return changed, [Change(view.seq, "presence", member)]


def _call_changed(
    view: TeamView, call_id: str, update: CallUpdate
) -> tuple[TeamView, list[Change]]:
    """The view with one call updated, and a `call` change if the call's JSON changed."""
    call = view.calls.get(call_id)
    if call is None:
        return view, []
    after = update(call)
    if after is call:
        return view, []
    return replace(view, calls={**view.calls, call_id: after}), [Change(view.seq, "call", after)]


def _speaking_changed(view: TeamView, event: SpeakingChanged) -> tuple[TeamView, list[Change]]:
    changed, changes = _call_changed(
        view, event.call_id, lambda c: calls.flagged(c, event.user_id, "speaking", event.speaking)
    )
    if not changes:
        return view, []
    data = {"call_id": event.call_id, "user_id": event.user_id, "speaking": event.speaking}
    return changed, [Change(view.seq, "speaking", data)]
