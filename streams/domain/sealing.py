"""From decided events to sealed records of the team's log, and from records back to state.

`decide_and_seal` is what the decider calls per command (a typed `Command`, or the
`CommandEnvelope` it decoded from the commands topic once): it returns the records to
append (in order, already hashed and chained) and the state that follows from them (for a
heartbeat, also its refreshed lease, which no record holds: it often comes with no records).
Store that state only after the broker acknowledged the records; a crash in between re-decides
the command from the old state, which gives byte-identical records for consumers to skip by
`(team_id, seq)`.

Everything in a record follows from the command and the state: `seq` continues the state's,
`prev_hash` chains from its last hash, `event_id` is a UUID 5 of team, command and index,
`occurred_at` is the command's `received_at`, `actor` its actor, `causation_id` its id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from msgspec.structs import replace

from schemas.clock import TIME_PATTERN, parse_millis
from schemas.commands import Command, CommandEnvelope, RecordHeartbeat
from schemas.envelope import compute_hash, seal
from schemas.events import CommandRejected, Event, RejectionReason
from schemas.mapper import (
    MAPPER,
    MalformedData,
    MalformedEnvelope,
    UnknownType,
    UnsupportedVersion,
)
from streams.domain.decide import DEFAULT_PRESENCE_TTL, decide
from streams.domain.evolve import evolve
from streams.domain.presence import heard
from streams.domain.state import TeamState

#: Namespace of the UUID 5 event ids (fixed forever: changing it changes every record).
EVENT_ID_NAMESPACE = uuid.UUID("79b3da35-e02c-4b2e-bcb1-04fbf4f8e69f")

_CONTRACT_TIME = re.compile(TIME_PATTERN)


class ChainError(ValueError):
    """A record does not continue the state's chain (a gap, a broken link, a bad hash)."""


class CommandHeader(Protocol):
    """What sealing needs of a command: a `Command` or a `CommandEnvelope` both have it."""

    @property
    def command_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def team_id(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def received_at(self) -> str: ...


def event_id(team_id: str, command_id: str, index: int) -> str:
    """The id of the `index`-th event (from 0) caused by a command: the same every time."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{team_id}/{command_id}/{index}"))


def decide_and_seal(
    state: TeamState,
    command: Command | CommandEnvelope,
    *,
    presence_ttl: float = DEFAULT_PRESENCE_TTL,
) -> tuple[list[dict[str, Any]], TeamState]:
    """The sealed records a command appends to its team's log, and the state after them.

    `command` is a typed Command, or a valid command envelope (`MAPPER.decode_command_envelope`)
    whose data is typed here: an unknown type or version is answered `command.rejected`
    `unknown_command`, data breaking its schema `malformed_command`. Store the returned state
    even when there are no records.
    """
    if isinstance(command, Command):
        return _decide_typed(state, command, presence_ttl)
    if command.command_id in state.decided:
        return [], state
    try:
        typed = MAPPER.command_from_envelope(command)
    except (UnknownType, UnsupportedVersion):
        return seal_events(state, command, [_rejection(command, RejectionReason.UNKNOWN_COMMAND)])
    except MalformedData:
        return seal_events(state, command, [_rejection(command, RejectionReason.MALFORMED_COMMAND)])
    return _decide_typed(state, typed, presence_ttl)


def _decide_typed(
    state: TeamState, command: Command, presence_ttl: float
) -> tuple[list[dict[str, Any]], TeamState]:
    if command.command_id in state.decided:
        return [], state
    if not _CONTRACT_TIME.match(command.received_at):
        # It becomes occurred_at, which the contract fixes to this one shape.
        raise MalformedEnvelope(f"received_at {command.received_at!r} is not {TIME_PATTERN}")
    records, after = seal_events(state, command, decide(state, command, presence_ttl=presence_ttl))
    if isinstance(command.data, RecordHeartbeat):  # the one change no event records
        now_ms = parse_millis(command.received_at)
        after = heard(after, command.actor, command.data.device_id, now_ms)
    return records, after


def seal_events(
    state: TeamState, command: CommandHeader, events: Iterable[Event]
) -> tuple[list[dict[str, Any]], TeamState]:
    """Records for `events` caused by `command`, chained on from `state`, and the state after."""
    records = []
    for index, event in enumerate(events):
        type_name, version, data = MAPPER.event_to_data(event)
        record = seal(
            {
                "event_id": event_id(command.team_id, command.command_id, index),
                "type": type_name,
                "version": version,
                "team_id": command.team_id,
                "seq": state.seq + 1,
                "occurred_at": command.received_at,
                "actor": command.actor,
                "causation_id": command.command_id,
                "data": data,
                "prev_hash": state.last_hash,
            }
        )
        records.append(record)
        state = _advance(state, record, event)
    return records, state


def apply_record(state: TeamState, record: Mapping[str, Any]) -> TeamState:
    """The state after one record of the log; a record already folded in is skipped.

    Raises ChainError if the record does not continue the chain. Types this code does not
    know still advance `seq` and the hash.
    """
    seq = record.get("seq")
    if not isinstance(seq, int):
        raise ChainError(f"record without a seq: {record.get('event_id')!r}")
    if seq <= state.seq:
        return state
    if seq != state.seq + 1:
        raise ChainError(f"seq {state.seq + 1} missing before seq {seq}")
    if record.get("prev_hash") != state.last_hash:
        raise ChainError(f"seq {seq}: prev_hash is not the hash of seq {state.seq}")
    if compute_hash(record) != record.get("hash"):
        raise ChainError(f"seq {seq}: hash does not match the record")
    try:
        event: Event | None = MAPPER.decode_event(record).data
    except UnknownType:
        event = None
    return _advance(state, record, event)


def fold(records: Iterable[Mapping[str, Any]], state: TeamState | None = None) -> TeamState:
    """The state after every record, from `state` (default: a team with no events)."""
    folded = TeamState() if state is None else state
    for record in records:
        folded = apply_record(folded, record)
    return folded


def _advance(state: TeamState, record: Mapping[str, Any], event: Event | None) -> TeamState:
    decided = state.decided.add(record["causation_id"], parse_millis(record["occurred_at"]))
    advanced = replace(state, seq=record["seq"], last_hash=record["hash"], decided=decided)
    return advanced if event is None else evolve(advanced, event)


def _rejection(command: CommandHeader, reason: str) -> CommandRejected:
    return CommandRejected(command_id=command.command_id, command_type=command.type, reason=reason)
