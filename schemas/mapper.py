"""The one mapper between typed commands and events and their envelopes on the wire.

    from schemas.mapper import MAPPER, UnknownType
    command = MAPPER.decode_command(kafka_value)        # -> Command (typed payload)
    try:
        event = MAPPER.decode_event(record)             # -> RecordedEvent, data upcast
    except UnknownType:
        pass                                            # a newer type: skip it

Old versions are upgraded by upcasters registered with `register_upcaster`; unknown types
raise `UnknownType` (a consumer skips them), newer versions `UnsupportedVersion`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from schemas.commands import COMMAND_TYPES, Command, CommandEnvelope, CommandPayload
from schemas.envelope import EventEnvelope
from schemas.events import EVENT_TYPES, Event, RecordedEvent
from schemas.registry import (
    MalformedData,
    MapperError,
    TypeRegistry,
    UnknownType,
    UnsupportedVersion,
    Upcaster,
)

__all__ = [
    "MAPPER",
    "MalformedData",
    "MalformedEnvelope",
    "Mapper",
    "MapperError",
    "UnknownType",
    "UnsupportedVersion",
    "Upcaster",
    "register_upcaster",
]


class MalformedEnvelope(MapperError):
    """The envelope itself is broken (not JSON, a field missing): nothing can answer it."""


class Mapper:
    """Commands and events to and from their envelopes, with versions and upcasters."""

    def __init__(self) -> None:
        self.commands: TypeRegistry[CommandPayload] = TypeRegistry("command")
        self.events: TypeRegistry[Event] = TypeRegistry("event")

    def register_upcaster(self, type_name: str, from_version: int, upcaster: Upcaster) -> None:
        """Upgrade data of `type_name` (a command or event type) from `from_version` by one."""
        registry = self.commands if self.commands.knows(type_name) else self.events
        registry.register_upcaster(type_name, from_version, upcaster)

    def encode_command(self, command: Command) -> dict[str, Any]:
        """The command envelope of a typed command, as plain JSON values."""
        type_name, version, data = self.commands.to_data(command.data)
        return {
            "command_id": command.command_id,
            "type": type_name,
            "version": version,
            "team_id": command.team_id,
            "actor": command.actor,
            "received_at": command.received_at,
            "data": data,
        }

    def command_to_bytes(self, command: Command) -> bytes:
        """The command as the JSON value of a Kafka record."""
        return msgspec.json.encode(self.encode_command(command))

    def decode_command_envelope(self, raw: bytes | Mapping[str, Any]) -> CommandEnvelope:
        """The validated envelope of a command (its data still untyped)."""
        try:
            # A mapping goes through JSON too, so that it is checked exactly as bytes are.
            encoded = raw if isinstance(raw, bytes) else msgspec.json.encode(dict(raw))
            return msgspec.json.decode(encoded, type=CommandEnvelope)
        except (msgspec.DecodeError, TypeError, UnicodeError) as exc:
            raise MalformedEnvelope(f"command envelope: {exc}") from exc

    def command_from_envelope(self, envelope: CommandEnvelope) -> Command:
        """The typed command of a valid envelope (UnknownType, UnsupportedVersion,
        MalformedData if its type or data do not fit)."""
        data = self.commands.from_data(envelope.type, envelope.version, envelope.data)
        return Command(
            command_id=envelope.command_id,
            team_id=envelope.team_id,
            actor=envelope.actor,
            received_at=envelope.received_at,
            data=data,
        )

    def decode_command(self, raw: bytes | Mapping[str, Any]) -> Command:
        """A typed command from its JSON bytes or decoded envelope."""
        return self.command_from_envelope(self.decode_command_envelope(raw))

    def event_to_data(self, event: Event) -> tuple[str, int, dict[str, Any]]:
        """(type, version, data) of a typed event, to put in an envelope."""
        return self.events.to_data(event)

    def decode_event(self, record: Mapping[str, Any]) -> RecordedEvent:
        """A typed event from a record of the log (UnknownType for types to skip)."""
        try:
            envelope = msgspec.convert(dict(record), EventEnvelope)
        except msgspec.ValidationError as exc:
            raise MalformedEnvelope(f"event envelope: {exc}") from exc
        data = self.events.from_data(envelope.type, envelope.version, envelope.data)
        return RecordedEvent(
            event_id=envelope.event_id,
            type=envelope.type,
            version=envelope.version,
            team_id=envelope.team_id,
            seq=envelope.seq,
            occurred_at=envelope.occurred_at,
            actor=envelope.actor,
            causation_id=envelope.causation_id,
            data=data,
            prev_hash=envelope.prev_hash,
            hash=envelope.hash,
        )


def default_mapper() -> Mapper:
    """A mapper that knows every command and event type of this code base."""
    mapper = Mapper()
    for command_type in COMMAND_TYPES:
        mapper.commands.register(command_type)
    for event_type in EVENT_TYPES:
        mapper.events.register(event_type)
    return mapper


#: The mapper every service uses; register upcasters on it at import time.
MAPPER = default_mapper()


def register_upcaster(type_name: str, from_version: int, upcaster: Upcaster) -> None:
    """Upgrade `type_name` data from `from_version` to the next version, in `MAPPER`."""
    MAPPER.register_upcaster(type_name, from_version, upcaster)
