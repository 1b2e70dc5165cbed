"""A team's read models folded in place: what `project` gives, without a new view per event.

`project` returns a new `TeamView` per event (sharing what did not change) so that a projector
can keep and compare views. A single pass over a log that keeps no earlier view (`chorus replay
state`) needs none of that: `TeamFold` applies the same `delta` to dicts of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.events import Event
from streams.projection.delta import delta
from streams.projection.project import event_of, record_key
from streams.projection.view import TeamView


class TeamFold:
    """One team's members, calls and position, changed in place by each record applied."""

    __slots__ = ("calls", "members", "seq", "team_id")

    def __init__(self, view: TeamView) -> None:
        self.team_id = view.team_id
        self.seq = view.seq
        self.members = dict(view.members)
        self.calls = dict(view.calls)

    def apply(self, seq: int, event: Event | None, at: str) -> None:
        """The team's record `seq` (above `self.seq`): `event` at `at`, or None (position only)."""
        self.seq = seq
        if event is not None and (change := delta(self.team_id, self.calls, event, at)):
            (self.members if change.member else self.calls)[change.key] = change.value

    def add(self, record: Mapping[str, Any]) -> None:
        """A record of this team's log as `project` takes it (a repeat changes nothing)."""
        key = record_key(record)
        if key is None or key[0] != self.team_id:
            raise ValueError(f"record {record.get('event_id')!r} is not of team {self.team_id}")
        if key[1] > self.seq:
            decoded = event_of(record)
            self.apply(key[1], *(decoded or (None, "")))

    def view(self) -> TeamView:
        """The read models as a view (a copy: folding on leaves it as it is)."""
        return TeamView(
            team_id=self.team_id, seq=self.seq, members=dict(self.members), calls=dict(self.calls)
        )
