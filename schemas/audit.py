"""Operators' audit log and token revocations: the records on `<prefix>.audit` and
`<prefix>.revocations`.

An audit record is one JSON object, chained as a team's events are (schemas/envelope.py):

    {"audit_id", "seq", "occurred_at", "operator_id", "action", "target": {"user_id"?,
     "team_id"?}, "reason", "details": {...}, "prev_hash", "hash"}

`seq` counts the whole log from 1 without gaps (the log is one chain, in one partition);
`prev_hash` is the previous record's `hash` (`GENESIS_HASH` for seq 1) and `hash` is
`sha256_hex(prev_hash + canonical_text)`, exactly as for events. Records hold ids, the names of
the fields changed and the operator's reason, never the values of personal data, so erasing an
account leaves the audit log as it is.

A revocation is `{"user_id", "not_before"}` keyed by the user id: every token of that user signed
before `not_before` (an RFC 3339 time) is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from schemas.envelope import GENESIS_HASH, compute_hash, record_to_bytes
from schemas.fields import Hash, Id, Positive, Timestamp

#: The key of every audit record: one key, so one partition holds the whole chain in order.
AUDIT_KEY = b"audit"

Action = Literal[
    "account.update",
    "account.password_reset",
    "account.disable",
    "account.enable",
    "account.erase",
    "team.member_remove",
    "team.owner_transfer",
]

#: Why an operator made an edit: required, one to 1,000 characters, not only spaces.
Reason = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1000,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\S[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
        description="Why the operator made this edit (kept forever: no personal data).",
    ),
]


class AuditTarget(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """What an edit was made to: an account, a team, or a member of a team."""

    user_id: Id | None = None
    team_id: Id | None = None


class AuditRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One operator's edit, as stored on the audit topic (keyed `audit`, one chain)."""

    audit_id: Id
    seq: Positive
    occurred_at: Timestamp
    operator_id: Id
    action: Action
    target: AuditTarget
    reason: str
    details: dict[str, Any]
    prev_hash: Hash
    hash: Hash


class Revocation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every token of `user_id` signed before `not_before` is refused (the revocations topic,
    keyed by user id, compacted)."""

    user_id: Id
    not_before: Timestamp
    # Set: only the user's membership of this team ended (an operator removed them), keyed
    # `<user_id>/<team_id>`; services forget the membership at once, the tokens stay valid.
    team_id: Id | None = None


def new_audit_record(
    *,
    audit_id: str,
    seq: int,
    prev_hash: str,
    occurred_at: str,
    operator_id: str,
    action: Action,
    target: Mapping[str, str],
    reason: str,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    """A sealed audit record (its `hash` computed) following the record whose hash is
    `prev_hash`."""
    record: dict[str, Any] = {
        "audit_id": audit_id,
        "seq": seq,
        "occurred_at": occurred_at,
        "operator_id": operator_id,
        "action": action,
        "target": dict(target),
        "reason": reason,
        "details": dict(details),
        "prev_hash": prev_hash,
    }
    record["hash"] = compute_hash(record)
    return record


def link_status(record: Mapping[str, Any], previous_hash: str | None) -> str:
    """One record's chain status given the hash of the record before it (None: unknown).

    `ok`, `bad_hash` (its content is not what its hash says) or `broken_link` (its prev_hash is
    not the previous record's hash).
    """
    if _hash_of(record) != record.get("hash"):
        return "bad_hash"
    if previous_hash is not None and record.get("prev_hash") != previous_hash:
        return "broken_link"
    return "ok"


class AuditChain:
    """Checks the audit log's records one at a time, in log order: seq runs 1, 2, 3... (or on
    from the first record, `partial`), each hash is right and links to the one before. A record
    written twice after a crash is allowed when the copies are identical."""

    def __init__(self, *, partial: bool = False) -> None:
        self._partial = partial
        self._last: tuple[int, str] | None = None  # seq and hash of the last record
        self._seen: dict[int, str] = {}  # seq -> digest of the whole record
        self.records = 0

    def feed(self, record: Mapping[str, Any]) -> list[str]:
        """What is wrong with this record given those fed before it (empty: nothing)."""
        seq = record.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
            return ["seq missing or not a positive integer"]
        try:
            digest = hashlib.sha256(record_to_bytes(record)).hexdigest()
        except (TypeError, ValueError) as exc:
            return [f"seq {seq}: not serialisable as JSON: {exc}"]
        earlier = self._seen.get(seq)
        if earlier is not None:
            return [] if earlier == digest else [f"seq {seq}: differs from its earlier copy"]
        self._seen[seq] = digest
        self.records += 1
        return self._check(seq, record)

    def _check(self, seq: int, record: Mapping[str, Any]) -> list[str]:
        problems = []
        if self._last is None and self._partial:
            previous: str | None = None
        else:
            last_seq, previous = self._last or (0, GENESIS_HASH)
            if seq != last_seq + 1:
                problems.append(f"seq {seq}: comes after seq {last_seq}")
                previous = None
        status = link_status(record, previous)
        if status != "ok":
            problems.append(f"seq {seq}: {status.replace('_', ' ')}")
        self._last = (seq, str(record.get("hash")))
        return problems


def verify_audit(records: Iterable[Mapping[str, Any]], *, partial: bool = False) -> list[str]:
    """Every problem of these audit records, in log order: empty means the chain is intact."""
    chain = AuditChain(partial=partial)
    return [problem for record in records for problem in chain.feed(record)]


def _hash_of(record: Mapping[str, Any]) -> str | None:
    try:
        return compute_hash(record)
    except (TypeError, KeyError, ValueError):
        return None
