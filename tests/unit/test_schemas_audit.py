"""The audit log's chain: each record sealed on the one before, any edit or gap named."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from schemas.audit import link_status, new_audit_record, verify_audit
from schemas.envelope import GENESIS_HASH
from schemas.jsonschema import SCHEMA_DIR


def _chain(length: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for seq in range(1, length + 1):
        records.append(
            new_audit_record(
                audit_id=f"a{seq}",
                seq=seq,
                prev_hash=records[-1]["hash"] if records else GENESIS_HASH,
                occurred_at="2030-01-01T00:00:00.000Z",
                operator_id="op",
                action="account.disable",
                target={"user_id": "u"},
                reason="abuse",
                details={},
            )
        )
    return records


def test_an_intact_chain_verifies_and_a_copy_written_twice_is_allowed() -> None:
    records = _chain(3)
    assert verify_audit(records) == []
    assert verify_audit([*records[:2], records[1], records[2]]) == []
    assert verify_audit(records[1:], partial=True) == []


def test_an_edited_a_missing_or_a_relinked_record_is_named() -> None:
    records = _chain(3)
    edited = {**records[1], "reason": "something else"}
    assert verify_audit([records[0], edited, records[2]]) == ["seq 2: bad hash"]
    assert verify_audit([records[0], records[2]]) == ["seq 3: comes after seq 1"]
    assert verify_audit(records[1:]) == ["seq 2: comes after seq 0"]
    assert verify_audit([*records, {**records[2], "reason": "x"}]) == [
        "seq 3: differs from its earlier copy"
    ]
    assert link_status(records[2], records[0]["hash"]) == "broken_link"
    assert link_status(records[2], records[1]["hash"]) == "ok"


def test_records_validate_against_the_checked_in_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "audit-record.json").read_text(encoding="utf-8"))
    for record in _chain(2):
        jsonschema.validate(record, schema)
