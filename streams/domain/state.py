"""What a team's decider knows: the fold of the team's events, plus presence leases.

Leases (`Device.heard_ms`, `TeamState.leases_from_ms`) are the only part the log does not
record: heartbeats refresh them without an event. `recorded(state)` is the state without them,
which is what folding the log gives.

`TeamState` is immutable: `evolve` and the deciders build a new one, copying only the parts
they change. It is a msgspec Struct, so it stores as JSON or MessagePack
(`state_to_bytes` / `state_from_bytes`), e.g. in a Faust table.
"""

from __future__ import annotations

import msgspec

from schemas.envelope import GENESIS_HASH
from schemas.fields import PresenceStatus
from streams.domain.decided import DecidedIds

#: Ended call ids remembered, to answer `call_ended` rather than `unknown_call`.
ENDED_CALLS_MAX = 1_000
#: A device offline this long (by its last heartbeat or set) is forgotten at the next expiry.
DEVICE_RETENTION_MS = 24 * 3600 * 1000


class Device(msgspec.Struct, frozen=True):
    """One device of a member: the status last set on it, when the log last saw it, its lease."""

    status: PresenceStatus  # as set; `available` for a device only ever heard by heartbeat
    last_seen_ms: int  # as recorded: its last presence change (an expiry: when last heard)
    expired: bool = False  # heartbeats stopped for the TTL: offline until the next one
    heard_ms: int = 0  # its last heartbeat since the state was restored (not in the log)

    @property
    def effective(self) -> PresenceStatus:
        """The status the team sees."""
        return "offline" if self.expired else self.status


class UserPresence(msgspec.Struct, frozen=True):
    """A member's devices and when any of them was last heard."""

    devices: dict[str, Device]
    last_seen_ms: int


class ActiveCall(msgspec.Struct, frozen=True):
    """A call that has not ended; `participants` maps user id to muted."""

    call_id: str
    started_by: str
    topic: str | None
    invitees: tuple[str, ...]
    participants: dict[str, bool]


class Room(msgspec.Struct, frozen=True):
    """Where the media tier mixes a call."""

    node: str
    offer_url: str


class TeamState(msgspec.Struct, frozen=True):
    """Everything one team's decider needs; `TeamState()` is a team with no events yet."""

    seq: int = 0  # seq of the last event folded in
    last_hash: str = GENESIS_HASH  # its hash: the next event's prev_hash
    calls: dict[str, ActiveCall] = msgspec.field(default_factory=dict)
    user_calls: dict[str, str] = msgspec.field(default_factory=dict)  # user -> active call
    ended_calls: tuple[str, ...] = ()  # the latest ENDED_CALLS_MAX, oldest first
    rooms: dict[str, Room] = msgspec.field(default_factory=dict)  # call -> room not released
    presence: dict[str, UserPresence] = msgspec.field(default_factory=dict)
    decided: DecidedIds = msgspec.field(default_factory=DecidedIds)
    # When the state was restored (not in the log): devices online then hold a lease from then.
    leases_from_ms: int = 0


def recorded(state: TeamState) -> TeamState:
    """The state as the log records it: without leases (what `fold` gives)."""
    if not state.leases_from_ms and not any(
        device.heard_ms for user in state.presence.values() for device in user.devices.values()
    ):
        return state
    presence = {
        user_id: msgspec.structs.replace(
            user,
            devices={
                key: msgspec.structs.replace(device, heard_ms=0)
                for key, device in user.devices.items()
            },
        )
        for user_id, user in state.presence.items()
    }
    return msgspec.structs.replace(state, presence=presence, leases_from_ms=0)


def remember_ended(ended: tuple[str, ...], call_id: str) -> tuple[str, ...]:
    """The ended call ids with `call_id` added, keeping the latest ENDED_CALLS_MAX."""
    return (*ended, call_id)[-ENDED_CALLS_MAX:]


def state_to_bytes(state: TeamState) -> bytes:
    """A compact serialisation of the state (MessagePack)."""
    return msgspec.msgpack.encode(state)


def state_from_bytes(raw: bytes) -> TeamState:
    """The state `state_to_bytes` wrote."""
    return msgspec.msgpack.decode(raw, type=TeamState)
