"""The read models of one team (members' presence, calls) and their contract JSON.

A `TeamView` is what `project` folds out of a team's events: each member and each call kept as
the very JSON object the queries service serves (CONTRACT.md, "Read models"), so that storing
and serving them needs no mapping. A `Change` is what one event changed, as a live query sends
it (`event: presence`, `call` or `speaking`, with the position as its id).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgspec


class TeamView(msgspec.Struct, frozen=True):
    """A team's read models after its events up to `seq` (0: none yet).

    Never mutated, inside either: `project` builds new dicts for what an event changes and
    shares the rest, so an entry that is the same object in two views is unchanged.
    """

    team_id: str
    seq: int = 0  # seq of the last event applied: the read models' position
    members: dict[str, dict[str, Any]] = {}  # user_id -> member JSON
    calls: dict[str, dict[str, Any]] = {}  # call_id -> call JSON


class Change(NamedTuple):
    """What one event changed, for live queries: `presence` (data: one member), `call` (one
    whole call) or `speaking` (`{"call_id", "user_id", "speaking"}`)."""

    seq: int
    kind: str
    data: dict[str, Any]


def position(view: TeamView) -> str:
    """The view's position as the contract writes it (an opaque string: the team's seq)."""
    return str(view.seq)


def presence_json(view: TeamView) -> dict[str, Any]:
    """`GET /v1/teams/{team_id}/presence`: `{"position", "members"}`, members by user id."""
    members = [view.members[user_id] for user_id in sorted(view.members)]
    return {"position": position(view), "members": members}


def calls_json(view: TeamView, state: str | None = None) -> dict[str, Any]:
    """`GET /v1/teams/{team_id}/calls[?state=]`: `{"position", "calls"}`, oldest first.

    `state` is `active` or `ended` to list only those, None for all.
    """
    chosen = [c for c in view.calls.values() if state is None or c["state"] == state]
    chosen.sort(key=lambda call: (call["started_at"], call["call_id"]))
    return {"position": position(view), "calls": chosen}


def snapshot_json(view: TeamView) -> dict[str, Any]:
    """The data of a live query's first `snapshot` event: `{"presence", "calls"}`."""
    return {"presence": presence_json(view), "calls": calls_json(view)["calls"]}


def is_settled(call: dict[str, Any]) -> bool:
    """True for an ended call whose room is released: no event can change it any more."""
    return bool(call["state"] == "ended" and call["media"] is None)


def without_settled_calls(view: TeamView) -> TeamView:
    """The view without settled calls: what a projector must keep to apply further events.

    `project` leaves a settled call untouched whatever comes, so dropping it from memory (it
    stays stored) changes no later result; it keeps a long-lived team's view small.
    """
    if not any(is_settled(call) for call in view.calls.values()):
        return view
    calls = {k: call for k, call in view.calls.items() if not is_settled(call)}
    return msgspec.structs.replace(view, calls=calls)
