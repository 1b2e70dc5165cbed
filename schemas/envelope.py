"""The event envelope and the hash chain that makes any edit of a team's log detectable.

A record on the events topic is one JSON object:

    {"event_id", "type", "version", "team_id", "seq", "occurred_at", "actor",
     "causation_id", "data": {...}, "prev_hash", "hash"}

`seq` counts a team's events from 1 without gaps; `prev_hash` is the `hash` of the team's
previous record (`GENESIS_HASH` for seq 1); and

    hash = sha256_hex(UTF-8(prev_hash + canonical_text))

where `canonical_text` is the record without `hash`, serialised by
`json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`. The
concatenation is of two *strings*, hashed as UTF-8; since `prev_hash` is ASCII hex this equals
`sha256(prev_hash.encode() + canonical(record))`, which is how it is computed here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec
import orjson

from schemas.fields import Hash, Id, Positive, Timestamp

#: `prev_hash` of a team's first event.
GENESIS_HASH = "0" * 64

#: The envelope's fields, in the order records are built (the hash does not depend on it).
ENVELOPE_FIELDS = (
    "event_id",
    "type",
    "version",
    "team_id",
    "seq",
    "occurred_at",
    "actor",
    "causation_id",
    "data",
    "prev_hash",
    "hash",
)


class EventEnvelope(msgspec.Struct, frozen=True):
    """One event of a team's log, as stored on the events topic (keyed by team_id)."""

    event_id: Id
    type: str
    version: Positive
    team_id: Id
    seq: Positive
    occurred_at: Timestamp
    actor: Id
    causation_id: Id
    data: dict[str, Any]
    prev_hash: Hash
    hash: Hash


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the hash covers: the record without `hash`, as the contract serialises it."""
    return _canonical_json({key: value for key, value in record.items() if key != "hash"})


def compute_hash(record: Mapping[str, Any]) -> str:
    """sha256_hex(prev_hash + canonical): what the record's `hash` must be."""
    prev_hash = record["prev_hash"]
    if not isinstance(prev_hash, str):
        raise TypeError("prev_hash must be a string")
    return hashlib.sha256(prev_hash.encode("utf-8") + canonical(record)).hexdigest()


def seal(record_without_hash: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the record with its `hash` added (its `prev_hash` must already be set)."""
    sealed = {key: value for key, value in record_without_hash.items() if key != "hash"}
    sealed["hash"] = compute_hash(sealed)
    return sealed


def record_to_bytes(record: Mapping[str, Any]) -> bytes:
    """The whole record, `hash` included, serialised as `canonical` serialises it without `hash`.

    The same record always gives the same bytes, whatever its key order: what copies of a record
    are compared by. Not the bytes on the topic: the worker's EventWriter produces
    `orjson.dumps(record)` (compact, in the record's own key order), which reads back the same.
    """
    return _canonical_json(record)


def _canonical_json(content: Mapping[str, Any]) -> bytes:
    # allow_nan=False only refuses what would not be JSON at all; valid records are unchanged.
    text = json.dumps(
        dict(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def record_from_bytes(raw: bytes) -> dict[str, Any]:
    """A record from the JSON bytes of a message or a line, as a plain dict (its hash unchecked).

    Raises ValueError saying what is wrong: `not JSON (<where>)` or `not a JSON object`.
    """
    try:
        loaded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(loaded, dict):
        raise ValueError("not a JSON object")
    return loaded


def record_or_none(raw: bytes | None) -> dict[str, Any] | None:
    """`record_from_bytes`, but None for a missing value or one that is not a JSON object."""
    try:
        return record_from_bytes(raw or b"")
    except ValueError:
        return None


ProblemKind = Literal[
    "malformed", "bad_hash", "broken_link", "seq_gap", "seq_out_of_order", "duplicate_differs"
]


class ChainProblem(msgspec.Struct, frozen=True):
    """One thing wrong with a team's log, as `verify_chain` reports it."""

    kind: ProblemKind
    team_id: str | None
    seq: int | None
    message: str


class ChainVerifier:
    """Checks records one at a time, in log order; teams may be interleaved.

    Per team it checks that `seq` runs 1, 2, 3... (or, with `partial=True`, on from the first
    record seen, for an export that starts mid-log), that every `prev_hash` is the previous
    record's `hash`, that every `hash` is right, and that a repeated `(team_id, seq)` is an
    identical copy (which is allowed: a record written twice after a crash).
    """

    def __init__(self, *, partial: bool = False) -> None:
        self._partial = partial
        self._last: dict[str, tuple[int, str]] = {}  # team -> (seq, hash) of its last record
        self._seen: dict[tuple[str, int], str] = {}  # (team, seq) -> digest of the whole record

    def feed(self, record: Mapping[str, Any]) -> list[ChainProblem]:
        """The problems this record shows, given the records fed before it."""
        team, seq = record.get("team_id"), record.get("seq")
        if not (isinstance(team, str) and isinstance(seq, int) and _is_seq(seq)):
            return [_problem("malformed", record, "team_id or seq missing or mistyped")]
        if not _is_hash(record.get("hash")):
            return [_problem("malformed", record, "hash missing or not 64 hex digits")]
        try:
            digest = hashlib.sha256(record_to_bytes(record)).hexdigest()
        except (TypeError, ValueError) as exc:
            return [_problem("malformed", record, f"not serialisable as JSON: {exc}")]
        earlier = self._seen.get((team, seq))
        if earlier is not None:
            if earlier == digest:
                return []
            return [_problem("duplicate_differs", record, "differs from the earlier copy")]
        self._seen[(team, seq)] = digest
        return self._check_hash(record) + self._check_order(team, seq, record)

    def _check_hash(self, record: Mapping[str, Any]) -> list[ChainProblem]:
        if not _is_hash(record.get("prev_hash")):
            return [_problem("malformed", record, "prev_hash missing or not 64 hex digits")]
        if compute_hash(record) != record["hash"]:
            return [_problem("bad_hash", record, "hash does not match the record's content")]
        return []

    def _check_order(self, team: str, seq: int, record: Mapping[str, Any]) -> list[ChainProblem]:
        last = self._last.get(team)
        if last is None and self._partial:
            self._last[team] = (seq, record["hash"])
            return []
        last_seq, last_hash = last or (0, GENESIS_HASH)
        if seq < last_seq:
            return [_problem("seq_out_of_order", record, f"comes after seq {last_seq}")]
        self._last[team] = (seq, record["hash"])
        if seq > last_seq + 1:
            missing = f"{last_seq + 1}" if seq == last_seq + 2 else f"{last_seq + 1}..{seq - 1}"
            return [_problem("seq_gap", record, f"seq {missing} missing")]
        prev_hash = record.get("prev_hash")
        if _is_hash(prev_hash) and prev_hash != last_hash:  # a malformed one is reported already
            return [_problem("broken_link", record, f"prev_hash is not the hash of seq {last_seq}")]
        return []


def verify_chain(
    records: Iterable[Mapping[str, Any]], *, partial: bool = False
) -> list[ChainProblem]:
    """Every problem in these records (in log order): an empty list means the log is intact."""
    verifier = ChainVerifier(partial=partial)
    return [problem for record in records for problem in verifier.feed(record)]


def _is_seq(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_hash(value: object) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def _problem(kind: ProblemKind, record: Mapping[str, Any], message: str) -> ChainProblem:
    team, seq = record.get("team_id"), record.get("seq")
    return ChainProblem(
        kind=kind,
        team_id=team if isinstance(team, str) else None,
        seq=seq if isinstance(seq, int) and _is_seq(seq) else None,
        message=message,
    )
