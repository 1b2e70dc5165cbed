"""Events decoded straight from the bytes of a record into typed records, a batch at a time.

`EventBytes.decode(values)` gives, per record, what `MAPPER.decode_event(record_from_bytes(v))`
would say of it, without building the record as a dict: the envelope is decoded by msgspec into
`EventHead` (its `data` left as raw JSON), then `data` into its type's struct; `shapes(heads)`
checks the envelope's patterned fields. Per record it is one of:

- an `EventHead` and its typed event: the record is an event of a known type;
- an `EventHead` and None: a usable place in the log (team, seq, time) but an event the
  projection does not apply (unknown type, newer version, data or envelope that breaks its
  schema), as `MapperError` says on the slow path;
- None: the bytes need the slow path (`record_from_bytes`): not an envelope msgspec accepts,
  or text with JSON escapes (`\\u`), which `schemas.text.storable` may have to rewrite.

`decode_keys(values)` reads less: the envelope as `EventHead` would take it, but of `data` only
`call_id` and `user_id` (`EventKeys`), to place a record and say which entry of a read model it
may change before deciding to decode it whole (`replay.state` decodes only the last ones).

The envelope's patterned fields (`occurred_at`, `prev_hash`, `hash`) are decoded as plain
strings and checked for a whole batch with string methods over their concatenation, falling
back to one search per record (msgspec's own test: `re.search`) only in a batch where some
record does not match: a fraction of the cost of decoding them with their patterns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import msgspec
import orjson

from schemas.clock import TIME_PATTERN
from schemas.events import Event
from schemas.fields import Id, Positive
from schemas.mapper import MAPPER, Mapper, MapperError

#: The pattern of `schemas.fields.Hash` (msgspec tests a pattern with `re.search`).
HASH_PATTERN = r"^[0-9a-f]{64}$"
_TIME_SEARCH = re.compile(TIME_PATTERN).search
_HASH_SEARCH = re.compile(HASH_PATTERN).search
#: A time of TIME_PATTERN's width: where it has fixed characters; its other places are `\d`
#: (a Unicode decimal digit: `str.isdecimal`).
_TIME_WIDTH = 24
_TIME_FIXED = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 23: "Z"}
_TIME_DIGITS = [i for i in range(_TIME_WIDTH) if i not in _TIME_FIXED]
_HASH_WIDTH = 64


class EventHead(msgspec.Struct, gc=False):
    """An event envelope as `schemas.envelope.EventEnvelope` has it, `data` still JSON."""

    event_id: Id
    type: str
    version: Positive
    team_id: Id
    seq: Positive
    occurred_at: str  # Timestamp: checked per batch (`EventBytes.decode`)
    actor: Id
    causation_id: Id
    data: msgspec.Raw
    prev_hash: str  # Hash: checked per batch
    hash: str  # Hash: checked per batch


class DataKeys(msgspec.Struct, gc=False):
    """Of an event's `data`, what names the entry of a read model it changes (if it has one)."""

    call_id: str | None = None
    user_id: str | None = None


class EventKeys(msgspec.Struct, gc=False):
    """`EventHead` with `data` read for its keys only: accepted exactly where `EventHead` is
    (same fields and constraints; any `data` object with string or null keys)."""

    event_id: Id
    type: str
    version: Positive
    team_id: Id
    seq: Positive
    occurred_at: str
    actor: Id
    causation_id: Id
    data: DataKeys
    prev_hash: str
    hash: str


_decode_head = msgspec.json.Decoder(EventHead).decode
_decode_keys = msgspec.json.Decoder(EventKeys).decode
_HEAD_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_DATA_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)
_ESCAPE = b"\\u"

DataDecoder = Callable[[bytes], Event]


class EventBytes:
    """Decodes batches of records for the mapper's event types as they are when it is built."""

    def __init__(self, mapper: Mapper = MAPPER) -> None:
        self._mapper = mapper
        #: type -> (current version, decoder of its data)
        self._types: dict[str, tuple[int, DataDecoder]] = {
            name: (version, msgspec.json.Decoder(cls).decode)
            for name, cls, version in mapper.events.types()
        }

    @property
    def versions(self) -> dict[str, int]:
        """type -> the version its events are decoded at (an older one is upcast)."""
        return {name: version for name, (version, _) in self._types.items()}

    def decode(
        self, values: Sequence[bytes | None]
    ) -> tuple[list[EventHead | None], list[Event | None]]:
        """Each record's envelope (None where the plain path must read the record) and its
        typed event (None where the mapper would raise `MapperError`).

        An event stands only if its head's patterned fields match too (`shapes`).
        """
        heads: list[EventHead | None] = []
        events: list[Event | None] = []
        types, add_head, add_event = self._types, heads.append, events.append
        for value in values:
            if value is None or _escaped(value):
                add_head(None)
                add_event(None)
                continue
            try:
                head = _decode_head(value)
            except _HEAD_ERRORS:
                add_head(None)
                add_event(None)
                continue
            add_head(head)
            known = types.get(head.type)
            if known is None or head.version != known[0]:
                add_event(self._other_version(head))
                continue
            try:
                add_event(known[1](head.data))
            except _DATA_ERRORS:
                add_event(None)
        return heads, events

    def _other_version(self, head: EventHead) -> Event | None:
        """The event of an unknown type (None), a newer version (None) or an older one (upcast
        as the mapper does)."""
        known = self._types.get(head.type)
        if known is None or head.version > known[0]:
            return None
        try:
            data = orjson.loads(memoryview(head.data))
            if not isinstance(data, dict):
                return None
            return self._mapper.events.from_data(head.type, head.version, data)
        except (*_DATA_ERRORS, orjson.JSONDecodeError, MapperError):
            return None


def decode_keys(values: Sequence[bytes | None]) -> list[EventKeys | None]:
    """Each record's `EventKeys`; None where it must be decoded whole to be placed (no head for
    `EventBytes.decode`, or `data` not an object whose keys are strings)."""
    keys: list[EventKeys | None] = []
    add = keys.append
    for value in values:
        # `_escaped`, inline: this loop runs once per record of a replay.
        if value is None or (b"\\" in value and _ESCAPE in value):
            add(None)
            continue
        try:
            add(_decode_keys(value))
        except _HEAD_ERRORS:
            add(None)
    return keys


def _escaped(value: bytes) -> bool:
    """True if the JSON text holds a `\\u` escape (a one-byte search first: mostly none)."""
    return b"\\" in value and _ESCAPE in value


def shapes(heads: Sequence[EventHead | None]) -> list[bool]:
    """Per head, whether `occurred_at`, `prev_hash` and `hash` match their patterns (None: False).

    Checked for the whole batch at once with string methods (a regular expression costs more
    than decoding the record); per head with the patterns only in a batch where that fails.
    """
    present = [head for head in heads if head is not None]
    if (
        present
        and _all_times([head.occurred_at for head in present])
        and _all_hashes([head.prev_hash for head in present])
        and _all_hashes([head.hash for head in present])
    ):
        return [head is not None for head in heads]
    return [head is not None and _shaped(head) for head in heads]


def _all_times(values: list[str]) -> bool:
    """True if every value matches TIME_PATTERN (False: some may not)."""
    if set(map(len, values)) != {_TIME_WIDTH}:
        return False  # a time with a final newline matches (`$`), but is left to `_shaped`
    joined, count = "".join(values), len(values)
    fixed = all(joined[i::_TIME_WIDTH] == c * count for i, c in _TIME_FIXED.items())
    return fixed and "".join([joined[i::_TIME_WIDTH] for i in _TIME_DIGITS]).isdecimal()


def _all_hashes(values: list[str]) -> bool:
    """True if every value is 64 lower-case hexadecimal digits (False: some may not be)."""
    if set(map(len, values)) != {_HASH_WIDTH}:
        return False
    joined = "".join(values)
    try:
        # fromhex takes hex digits of either case and skips whitespace: a full-length result
        # means there was no whitespace, and then only upper-case letters are left to refuse
        # (a search per letter: `str.islower` costs ten times the rest of this check).
        whole = len(bytes.fromhex(joined)) * 2 == len(joined)
    except ValueError:
        return False
    return whole and not any(letter in joined for letter in "ABCDEF")


def _shaped(head: EventHead) -> bool:
    return bool(
        _TIME_SEARCH(head.occurred_at) and _HASH_SEARCH(head.prev_hash) and _HASH_SEARCH(head.hash)
    )
