"""A call's read model, one event at a time: each function returns a new call JSON object.

`started_at`, `joined_at` and `ended_at` are the events' `occurred_at`. Participants are sorted
by `joined_at`, then `user_id`. Nobody is in an ended call: `call.ended` empties the
participants (the decider emits no `participant_left` for those still in it), and the call
keeps its `media` until `media.room_released`. A room allocated for a call that already ended
is not recorded (the decider rejects it anyway); an ended call whose room is released is
settled, and nothing changes it any more.
"""

from __future__ import annotations

from typing import Any

from schemas.events import CallStarted


def started(team_id: str, event: CallStarted, at: str) -> dict[str, Any]:
    """A new active call with its starter as its first participant."""
    return {
        "call_id": event.call_id,
        "team_id": team_id,
        "state": "active",
        "topic": event.topic,
        "started_by": event.started_by,
        "started_at": at,
        "ended_at": None,
        "participants": [_participant(event.started_by, at)],
        "media": None,
    }


def joined(call: dict[str, Any], user_id: str, at: str) -> dict[str, Any]:
    """The call with `user_id` in it (an ended call, or one they are in, is unchanged)."""
    if call["state"] != "active" or _index(call, user_id) is not None:
        return call
    participants = [*call["participants"], _participant(user_id, at)]
    participants.sort(key=lambda p: (p["joined_at"], p["user_id"]))
    return {**call, "participants": participants}


def left(call: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The call without `user_id` among its participants."""
    if _index(call, user_id) is None:
        return call
    participants = [p for p in call["participants"] if p["user_id"] != user_id]
    return {**call, "participants": participants}


def flagged(call: dict[str, Any], user_id: str, flag: str, value: bool) -> dict[str, Any]:
    """The call with a participant's `muted` or `speaking` flag set."""
    index = _index(call, user_id)
    if index is None or call["participants"][index][flag] == value:
        return call
    participants = list(call["participants"])
    participants[index] = {**participants[index], flag: value}
    return {**call, "participants": participants}


def ended(call: dict[str, Any], at: str) -> dict[str, Any]:
    """The call ended at `at`, with nobody left in it (a second end changes nothing)."""
    if call["state"] == "ended":
        return call
    return {**call, "state": "ended", "ended_at": at, "participants": []}


def with_room(call: dict[str, Any], offer_url: str | None) -> dict[str, Any]:
    """The call with its room's `offer_url` (None: the room is released)."""
    media = None if offer_url is None else {"offer_url": offer_url}
    if call["media"] == media or (media is not None and call["state"] != "active"):
        return call
    return {**call, "media": media}


def _participant(user_id: str, at: str) -> dict[str, Any]:
    return {"user_id": user_id, "joined_at": at, "muted": False, "speaking": False}


def _index(call: dict[str, Any], user_id: str) -> int | None:
    for index, participant in enumerate(call["participants"]):
        if participant["user_id"] == user_id:
            return index
    return None
