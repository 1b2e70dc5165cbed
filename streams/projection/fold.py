"""A team's read models folded in place: what `project` gives, without a new view per event.

`project` returns a new `TeamView` per event (sharing what did not change) so that a projector
can keep and compare views. A single pass over a log that keeps no earlier view (`chorus replay
state`) needs none of that: `TeamFold` applies the same `delta` to dicts of its own.

A pass that wants the views at its end only can skip more: `LastChanges` keeps an event whose
effect a later one may overwrite undecoded, and decodes it only if none did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from schemas.events import CallEnded, CallStarted, Event, RoomAllocated, RoomReleased
from streams.projection.delta import (
    MEMBER_EVENTS,
    PARTICIPANT_EVENTS,
    UNCHANGING_EVENTS,
    delta,
)
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
        if event is not None:
            self._change(event, at)

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

    def _change(self, event: Event, at: str) -> None:
        if change := delta(self.team_id, self.calls, event, at):
            (self.members if change.member else self.calls)[change.key] = change.value


T = TypeVar("T")
#: Decodes records kept undecoded (whatever the caller keeps of them, such as their bytes) into
#: their events: None for one that only moves the position.
Decode = Callable[[list[T]], list[Event | None]]
#: A member's waiting records are settled (its last one that decodes applied) past this many.
MEMBER_WAITING = 16
#: A call's waiting records are applied past this many: a long call holds little memory.
CALL_WAITING = 1000
Waiting = list[tuple[T, str]]  # records kept undecoded, each with its `occurred_at`


class LastChanges(TeamFold, Generic[T]):
    """A `TeamFold` for the views at its end: what a later event may overwrite waits, undecoded.

    A member's entry is what its last event that decodes says (`MEMBER_EVENTS`), so only that
    one is decoded. A call's participant events (`PARTICIPANT_EVENTS`) change nothing unless it
    is active; while it is, they wait, and are dropped when a `call.ended` or `call.started` of
    it applies (they change nothing that those leave); they touch its participants only, so
    they are applied, in their order, after its other events (rooms) with the same outcome.
    Everything else applies as in `TeamFold`, after whatever of the same member or call waits.

    A caller adds waiting records to `members_waiting` (a list per member, settled with
    `settle_member` past `MEMBER_WAITING`) and to `calls_waiting` (which has a list for each
    active call and for no other: a record of any other call changes nothing), or through
    `wait_member` and `wait_participant`, which do that.
    """

    __slots__ = ("_decode", "calls_waiting", "members_waiting")

    def __init__(self, team_id: str, decode: Decode[T]) -> None:
        super().__init__(TeamView(team_id=team_id))
        self._decode = decode
        self.members_waiting: dict[str, Waiting[T]] = {}
        self.calls_waiting: dict[str, Waiting[T]] = {}

    def wait_member(self, seq: int, user_id: str, record: T, at: str) -> None:
        """The team's record `seq` (above `self.seq`): a member event of `user_id`, undecoded."""
        self.seq = seq
        waiting = self.members_waiting.get(user_id)
        if waiting is None:
            self.members_waiting[user_id] = [(record, at)]
        else:
            waiting.append((record, at))
            if len(waiting) > MEMBER_WAITING:
                self.settle_member(user_id)

    def wait_participant(self, seq: int, call_id: str, record: T, at: str) -> None:
        """The team's record `seq` (above `self.seq`): a participant event of `call_id`."""
        self.seq = seq
        waiting = self.calls_waiting.get(call_id)
        if waiting is not None:
            waiting.append((record, at))
            if len(waiting) > CALL_WAITING:
                self.settle_call(call_id)

    def apply(self, seq: int, event: Event | None, at: str) -> None:
        """The team's record `seq`, decoded (as `TeamFold.apply`)."""
        if event is not None:
            self._before(event)
        super().apply(seq, event, at)

    def view(self) -> TeamView:
        """The read models, every waiting record settled first."""
        self._settle_all()
        return super().view()

    def pending(self) -> list[T]:
        """What `view` would decode (unless some fail to): each member's last waiting record
        and every waiting record of a call; for a caller to decode many teams' in one batch."""
        last = [waiting[-1][0] for waiting in self.members_waiting.values()]
        return last + [record for waiting in self.calls_waiting.values() for record, _ in waiting]

    def settle_member(self, user_id: str) -> None:
        """Apply the member's last waiting record that decodes; the rest change nothing."""
        waiting = self.members_waiting.pop(user_id)
        for record, at in reversed(waiting):
            (event,) = self._decode([record])
            if event is not None:
                self._change(event, at)
                return

    def settle_call(self, call_id: str) -> None:
        """Apply the call's waiting records, in their order (it stays active: they wait anew)."""
        waiting, self.calls_waiting[call_id] = self.calls_waiting[call_id], []
        events = self._decode([record for record, _ in waiting])
        for event, (_, at) in zip(events, waiting, strict=True):
            if event is not None:
                self._change(event, at)

    def _change(self, event: Event, at: str) -> None:
        super()._change(event, at)
        call_id = getattr(event, "call_id", None)
        if isinstance(call_id, str) and not isinstance(event, PARTICIPANT_EVENTS):
            call = self.calls.get(call_id)
            if call is not None and call["state"] == "active":
                self.calls_waiting.setdefault(call_id, [])

    def _before(self, event: Event) -> None:
        """Settle what waits and comes before `event`, or drop what `event` overwrites."""
        if isinstance(event, MEMBER_EVENTS):
            self.members_waiting.pop(event.user_id, None)
        elif isinstance(event, PARTICIPANT_EVENTS):
            if self.calls_waiting.get(event.call_id):
                self.settle_call(event.call_id)
        elif isinstance(event, CallStarted | CallEnded):
            self.calls_waiting.pop(event.call_id, None)  # re-made by `_change` if it is active
        elif not isinstance(event, (*UNCHANGING_EVENTS, RoomAllocated, RoomReleased)):
            self._settle_all()  # an event this fold does not know the effect of: after all else

    def _settle_all(self) -> None:
        for user_id in list(self.members_waiting):
            self.settle_member(user_id)
        for call_id, waiting in list(self.calls_waiting.items()):
            if waiting:
                self.settle_call(call_id)
