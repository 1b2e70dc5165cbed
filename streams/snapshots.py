"""Decider snapshots: each team's state with the events offset it reflects, versioned like events.

Entries of the compacted `<prefix>.decider-snapshots` topic, in the partition number of the
events partition they fold (Kafka Streams' changelog):

- `team:<team_id>` -> the team's state and the offset, in its events partition, just after the
  last event folded into it;
- `checkpoint` -> an offset such that every team of the partition with an event before it had
  its snapshot written before this entry. A loader folds only the events from there.

A value that does not decode, or has a version this code cannot upcast, is ignored: the teams it
would have given are folded from further back in the log. Nothing is trusted that the log cannot
rebuild.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from streams.domain import TeamState, recorded

log = logging.getLogger(__name__)

#: The current shape of a snapshot's value. Change it (and add an upcaster) when TeamState does.
SNAPSHOT_VERSION = 1
#: Turns the value of version N (decoded to plain data) into the value of version N + 1.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[int, Upcaster] = {}

CHECKPOINT_KEY = b"checkpoint"
TEAM_PREFIX = b"team:"


class TeamSnapshot(msgspec.Struct, frozen=True):
    """A team's state as of `offset`: it reflects every event of its partition before it."""

    team_id: str
    offset: int
    state: TeamState


class _TeamValue(msgspec.Struct, frozen=True):
    version: int
    team_id: str
    offset: int
    state: TeamState


class _CheckpointValue(msgspec.Struct, frozen=True):
    version: int
    offset: int


def team_entry(snapshot: TeamSnapshot) -> tuple[bytes, bytes]:
    """(key, value) of a team's snapshot."""
    # Without leases: a snapshot holds what the log holds (a loader gives fresh leases anyway).
    state = recorded(snapshot.state)
    value = _TeamValue(SNAPSHOT_VERSION, snapshot.team_id, snapshot.offset, state)
    return TEAM_PREFIX + snapshot.team_id.encode(), msgspec.msgpack.encode(value)


def checkpoint_entry(offset: int) -> tuple[bytes, bytes]:
    """(key, value) of a partition's checkpoint at `offset`."""
    return CHECKPOINT_KEY, msgspec.msgpack.encode(_CheckpointValue(SNAPSHOT_VERSION, offset))


_Value = TypeVar("_Value", _TeamValue, _CheckpointValue)


class UnreadableSnapshot(ValueError):
    """A value that does not decode to a snapshot this code knows."""


def decode_team(key: bytes, value: bytes) -> TeamSnapshot:
    """The snapshot of a `team:` entry; raises UnreadableSnapshot rather than guess."""
    team = _current(value, _TeamValue)
    if key != TEAM_PREFIX + team.team_id.encode():
        raise UnreadableSnapshot(f"entry {key!r} holds team {team.team_id!r}")
    return TeamSnapshot(team.team_id, team.offset, team.state)


def decode_checkpoint(value: bytes) -> int:
    """The offset of a `checkpoint` entry; raises UnreadableSnapshot rather than guess."""
    return _current(value, _CheckpointValue).offset


class _Versioned(msgspec.Struct):
    version: int


_VERSION = msgspec.msgpack.Decoder(_Versioned)  # reads the version, skipping the rest
_DECODERS: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {
    shape: msgspec.msgpack.Decoder(shape) for shape in (_TeamValue, _CheckpointValue)
}


def _current(value: bytes, shape: type[_Value]) -> _Value:
    try:
        version = _VERSION.decode(value).version
    except msgspec.ValidationError as exc:
        raise UnreadableSnapshot(f"no version: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise UnreadableSnapshot(f"not MessagePack: {exc}") from exc
    if not 1 <= version <= SNAPSHOT_VERSION:
        raise UnreadableSnapshot(f"version {version}: this code knows 1 to {SNAPSHOT_VERSION}")
    try:
        if version == SNAPSHOT_VERSION:  # straight to the shape: a takeover decodes many
            decoded: _Value = _DECODERS[shape].decode(value)
            return decoded
        data = msgspec.msgpack.decode(value)
    except msgspec.DecodeError as exc:  # ValidationError is one
        raise UnreadableSnapshot(str(exc)) from exc
    while version < SNAPSHOT_VERSION:
        upcaster = UPCASTERS.get(version)
        if upcaster is None:
            raise UnreadableSnapshot(f"no upcaster from version {version}")
        data = {**upcaster(data), "version": version + 1}
        version += 1
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as exc:
        raise UnreadableSnapshot(str(exc)) from exc


@dataclass
class Restored:
    """What a partition's snapshots give: teams, and where the fold of the log starts."""

    teams: dict[str, TeamSnapshot] = field(default_factory=dict)
    start: int = 0  # fold from here: every team's events before it are in its snapshot
    ignored: int = 0  # entries that could not be read


def restore(entries: list[tuple[bytes, bytes]]) -> Restored:
    """The teams of a partition's latest entries (in the order they were last written)."""
    teams: dict[str, TeamSnapshot] = {}
    ignored, unreadable_team, floor = 0, False, None
    for key, value in entries:
        try:
            if key == CHECKPOINT_KEY:
                floor = decode_checkpoint(value)
                # Each team written before the checkpoint reflects the log up to it.
                teams = {t: _at_least(s, floor) for t, s in teams.items()}
            elif key.startswith(TEAM_PREFIX):
                snapshot = decode_team(key, value)
                teams[snapshot.team_id] = snapshot
            else:
                raise UnreadableSnapshot(f"unknown key {key!r}")
        except UnreadableSnapshot as exc:
            log.warning("ignoring a decider snapshot %r: %s", key[:80], exc)
            ignored += 1
            if key != CHECKPOINT_KEY:
                unreadable_team = True  # that team's events must be folded from the start
            else:
                floor = None
    if unreadable_team or floor is None:
        return Restored(teams, 0, ignored)
    return Restored(teams, min([floor, *(s.offset for s in teams.values())]), ignored)


def _at_least(snapshot: TeamSnapshot, offset: int) -> TeamSnapshot:
    if snapshot.offset >= offset:
        return snapshot
    return TeamSnapshot(snapshot.team_id, offset, snapshot.state)
