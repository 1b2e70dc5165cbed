"""The event envelope's hash chain: canonical form, sealing and verification."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from schemas.envelope import (
    GENESIS_HASH,
    ChainVerifier,
    canonical,
    compute_hash,
    record_from_bytes,
    record_or_none,
    record_to_bytes,
    seal,
    verify_chain,
)

FIRST: dict[str, Any] = {
    "event_id": "e1",
    "type": "call.started",
    "version": 1,
    "team_id": "t1",
    "seq": 1,
    "occurred_at": "2026-11-23T19:30:00.123Z",
    "actor": "u1",
    "causation_id": "c1",
    "data": {"call_id": "k1", "started_by": "u1", "invitees": [], "topic": "Café ☕"},
    "prev_hash": GENESIS_HASH,
}


def chain(team: str = "t1", length: int = 4) -> list[dict[str, Any]]:
    """`length` sealed records of one team, correctly chained."""
    records, prev = [], GENESIS_HASH
    for seq in range(1, length + 1):
        record = seal(
            {**FIRST, "team_id": team, "seq": seq, "event_id": f"e{seq}", "prev_hash": prev}
        )
        records.append(record)
        prev = record["hash"]
    return records


def test_canonical_is_sorted_compact_utf8_without_the_hash() -> None:
    sealed = seal(FIRST)

    assert canonical(sealed) == canonical(FIRST)
    assert canonical(FIRST).decode("utf-8").startswith('{"actor":"u1","causation_id":"c1","data":{')
    assert "Café ☕".encode() in canonical(FIRST)  # not \u-escaped
    assert b" " not in canonical({"a": [1, 2], "b": {"c": None}})


def test_the_hash_is_sha256_of_prev_hash_and_canonical_text() -> None:
    text = json.dumps(FIRST, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    by_the_contract = hashlib.sha256((FIRST["prev_hash"] + text).encode("utf-8")).hexdigest()

    assert compute_hash(FIRST) == by_the_contract
    # A fixed vector: a change of the canonical form would break every log ever written.
    assert seal(FIRST)["hash"] == "acade81f441f51d6cc2dba725cba4c9277e3e7e4e7ae091b73c131ccdeac71ea"


def test_seal_replaces_a_stale_hash_and_leaves_its_input_alone() -> None:
    stale = {**FIRST, "hash": "f" * 64}

    assert seal(stale)["hash"] == compute_hash(FIRST)
    assert stale["hash"] == "f" * 64


def test_record_bytes_round_trip_and_ignore_key_order() -> None:
    record = seal(FIRST)

    assert record_from_bytes(record_to_bytes(record)) == record
    assert record_to_bytes(record) == record_to_bytes(dict(reversed(record.items())))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"seq": 1', r"^not JSON \(.+\)$"),
        (b"\xff", r"^not JSON \(.+\)$"),
        (b"", r"^not JSON \(.+\)$"),
        (b"[1, 2]", r"^not a JSON object$"),
        (b"null", r"^not a JSON object$"),
    ],
)
def test_bytes_that_are_no_record_say_why_or_give_none(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        record_from_bytes(raw)
    assert record_or_none(raw) is None


def test_a_record_read_leniently_is_the_record_and_a_missing_value_is_none() -> None:
    record = seal(FIRST)

    assert record_or_none(record_to_bytes(record)) == record
    assert record_or_none(None) is None


def test_an_intact_chain_has_no_problems() -> None:
    assert verify_chain(chain()) == []


def test_teams_may_be_interleaved() -> None:
    a, b = chain("a"), chain("b")

    assert verify_chain([r for pair in zip(a, b, strict=True) for r in pair]) == []


def test_an_altered_field_is_detected_at_its_record() -> None:
    records = chain()
    records[2] = {**records[2], "actor": "mallory"}

    problems = verify_chain(records)

    assert [(p.kind, p.team_id, p.seq) for p in problems] == [("bad_hash", "t1", 3)]


def test_an_altered_and_resealed_record_breaks_the_next_link() -> None:
    records = chain()
    records[1] = seal({**records[1], "data": {"call_id": "other"}})

    problems = verify_chain(records)

    assert [(p.kind, p.seq) for p in problems] == [("broken_link", 3)]


def test_a_seq_gap_is_detected() -> None:
    records = chain()
    del records[1]

    problems = verify_chain(records)

    assert [(p.kind, p.seq) for p in problems] == [("seq_gap", 3)]
    assert "seq 2 missing" in problems[0].message


def test_a_log_not_starting_at_one_has_a_gap_unless_partial() -> None:
    tail = chain()[2:]

    assert [p.kind for p in verify_chain(tail)] == ["seq_gap"]
    assert verify_chain(tail, partial=True) == []


def test_an_identical_duplicate_is_fine_and_a_differing_one_is_reported() -> None:
    records = chain()
    twin = dict(records[1])
    impostor = seal({**records[1], "actor": "mallory"})

    assert verify_chain([*records, twin]) == []
    problems = verify_chain([*records, impostor])
    assert [(p.kind, p.seq) for p in problems] == [("duplicate_differs", 2)]


def test_a_late_record_filling_a_gap_is_out_of_order() -> None:
    records = chain()

    problems = verify_chain([records[0], records[2], records[1], records[3]])

    assert [p.kind for p in problems] == ["seq_gap", "seq_out_of_order"]


@pytest.mark.parametrize(
    "broken",
    [
        {"seq": 1},
        {**FIRST, "seq": 0, "hash": "0" * 64},
        {**FIRST, "seq": True, "hash": "0" * 64},
        {**FIRST, "hash": "not a hash"},
        {**FIRST, "prev_hash": None, "hash": "0" * 64},
        {**FIRST, "data": float("nan"), "hash": "0" * 64},
    ],
)
def test_malformed_records_are_reported_not_raised(broken: dict[str, Any]) -> None:
    assert [p.kind for p in ChainVerifier().feed(broken)] == ["malformed"]
