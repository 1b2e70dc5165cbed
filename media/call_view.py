"""What a media node knows of calls: a small fold of the events topic, all partitions.

Active calls with their team, events partition, participants (and muted flags), how often each
user joined (for deterministic leave ids), and the call's current room. An ended call is kept
only until its room is released, so that its allocator can still release it. Also each user's
last reported region (from `presence.changed`), where their calls are placed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from schemas.events import (
    CallEnded,
    CallStarted,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    PresenceChanged,
    RecordedEvent,
    RoomAllocated,
    RoomReleased,
)
from schemas.mapper import MAPPER, MapperError


@dataclass
class CallInfo:
    """One call as the media tier sees it."""

    call_id: str
    team_id: str
    partition: int
    started_by: str
    participants: dict[str, bool] = field(default_factory=dict)  # user id -> muted
    joins: dict[str, int] = field(default_factory=dict)  # user id -> times joined
    active: bool = True
    node: str | None = None  # the node of the current room, None: no room
    offer_url: str | None = None
    allocations: int = 0  # media.room_allocated events so far


class CallView:
    """Calls by id, folded from events in log order (a record seen twice counts once)."""

    def __init__(self) -> None:
        self.calls: dict[str, CallInfo] = {}
        self.regions: dict[str, str] = {}  # user id -> the region they last reported
        self._seq: dict[str, int] = {}

    def apply_record(self, partition: int, record: dict[str, Any]) -> bool:
        """Fold one record of the events topic; False if it was skipped (unknown, repeated)."""
        try:
            event = MAPPER.decode_event(record)
        except MapperError:
            return False  # a type this code does not know, or not an event at all
        return self.apply(partition, event)

    def apply(self, partition: int, event: RecordedEvent) -> bool:
        """Fold one decoded event; False if this team's `seq` was already applied."""
        if event.seq <= self._seq.get(event.team_id, 0):
            return False
        self._seq[event.team_id] = event.seq
        data = event.data
        if isinstance(data, PresenceChanged):
            if data.region is not msgspec.UNSET:
                self.regions[data.user_id] = data.region
            return True
        if isinstance(data, CallStarted):
            self.calls[data.call_id] = CallInfo(
                call_id=data.call_id,
                team_id=event.team_id,
                partition=partition,
                started_by=data.started_by,
                participants={data.started_by: False},
                joins={data.started_by: 1},
            )
            return True
        call = self.calls.get(getattr(data, "call_id", ""))
        if call is None:
            return True
        if isinstance(data, ParticipantJoined):
            call.participants[data.user_id] = False
            call.joins[data.user_id] = call.joins.get(data.user_id, 0) + 1
        elif isinstance(data, ParticipantLeft):
            call.participants.pop(data.user_id, None)
        elif isinstance(data, ParticipantMuted):
            if data.user_id in call.participants:
                call.participants[data.user_id] = data.muted
        elif isinstance(data, CallEnded):
            call.active = False
            call.participants.clear()
            self._forget_if_done(call)
        elif isinstance(data, RoomAllocated):
            call.node, call.offer_url = data.node, data.offer_url
            call.allocations += 1
        elif isinstance(data, RoomReleased):
            call.node = call.offer_url = None
            self._forget_if_done(call)
        return True

    def _forget_if_done(self, call: CallInfo) -> None:
        if not call.active and call.node is None:
            del self.calls[call.call_id]

    def hosted_by(self, node_id: str) -> list[CallInfo]:
        """Active calls whose current room is on `node_id`."""
        return [call for call in self.calls.values() if call.active and call.node == node_id]

    def region_of(self, call: CallInfo) -> str | None:
        """Where `call` should be mixed: its starter's last reported region, if any."""
        return self.regions.get(call.started_by)

    def is_participant(self, call_id: str, user_id: str) -> bool:
        call = self.calls.get(call_id)
        return call is not None and call.active and user_id in call.participants
