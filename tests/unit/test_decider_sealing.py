"""Sealing decided events into the team's log: deterministic, chained, decided once."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from schemas.clock import parse_millis
from schemas.commands import CommandEnvelope, EndCall, JoinCall, LeaveCall, SetPresence, StartCall
from schemas.envelope import GENESIS_HASH, record_to_bytes, seal, verify_chain
from schemas.events import CommandRejected
from schemas.mapper import MAPPER, MalformedEnvelope
from streams.domain import (
    ChainError,
    TeamState,
    apply_record,
    decide,
    decide_and_seal,
    event_id,
    fold,
    state_from_bytes,
    state_to_bytes,
)
from streams.domain import decided as decided_module
from streams.domain.decided import DecidedIds
from streams.domain.testing import command, given

START = command("alice", StartCall(call_id="c1", invitees=("bob",)), command_id="start-1")


def history() -> tuple[list[dict[str, Any]], TeamState]:
    """A small mixed history: its records and the decider's state after it."""
    commands = [
        START,
        command("alice", SetPresence(status="busy", device_id="d1"), at=1),
        command("bob", JoinCall(call_id="c1"), at=2),
        command("carol", JoinCall(call_id="c1"), at=3),
        command("alice", LeaveCall(call_id="c1"), at=4),
        command("bob", EndCall(call_id="c1"), at=5),
        command("carol", LeaveCall(call_id="c1"), at=6),  # rejected: call_ended
    ]
    state, records = TeamState(), []
    for each in commands:
        new, state = decide_and_seal(state, each)
        records += new
    return records, state


def test_the_same_command_from_the_same_state_gives_byte_identical_records() -> None:
    state = given(command("bob", SetPresence(status="away", device_id="x")))

    first, _ = decide_and_seal(state, START)
    again, _ = decide_and_seal(state, START)

    assert first == again
    assert [record_to_bytes(r) for r in first] == [record_to_bytes(r) for r in again]


def test_a_command_decided_before_gives_nothing_and_changes_nothing() -> None:
    state = given(START)

    assert decide(state, START) == []
    assert decide_and_seal(state, START) == ([], state)


def test_records_carry_the_command_s_identity_and_time() -> None:
    records, _ = decide_and_seal(TeamState(), START)

    (record,) = records
    assert record["event_id"] == event_id("team-1", "start-1", 0)
    assert record["occurred_at"] == START.received_at
    assert record["actor"] == "alice" and record["causation_id"] == "start-1"
    assert (record["type"], record["version"], record["team_id"]) == ("call.started", 1, "team-1")
    assert (record["seq"], record["prev_hash"]) == (1, GENESIS_HASH)
    assert list(record) == [
        "event_id", "type", "version", "team_id", "seq", "occurred_at",
        "actor", "causation_id", "data", "prev_hash", "hash",
    ]  # fmt: skip


def test_records_number_and_chain_on_from_the_state() -> None:
    records, state = history()

    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert verify_chain(records) == []
    assert (state.seq, state.last_hash) == (records[-1]["seq"], records[-1]["hash"])
    assert len({r["event_id"] for r in records}) == len(records)


def test_one_command_may_append_several_records_each_with_its_own_id() -> None:
    leave = command("alice", LeaveCall(call_id="c1"), command_id="leave-1")

    records, _ = decide_and_seal(given(START), leave)

    assert [r["type"] for r in records] == ["call.participant_left", "call.ended"]
    assert [r["seq"] for r in records] == [2, 3]
    assert [r["event_id"] for r in records] == [
        event_id("team-1", "leave-1", 0),
        event_id("team-1", "leave-1", 1),
    ]
    assert records[1]["prev_hash"] == records[0]["hash"]


def test_every_command_has_exactly_one_recorded_outcome() -> None:
    records, state = history()

    assert len({r["causation_id"] for r in records}) == 7
    assert records[-1]["type"] == "command.rejected"
    assert set(state.decided) == {r["causation_id"] for r in records}


def test_folding_the_log_rebuilds_the_decider_state() -> None:
    records, state = history()

    assert fold(records) == state
    assert fold(records[3:], fold(records[:3])) == state


def test_a_record_already_applied_is_skipped() -> None:
    records, state = history()

    assert apply_record(state, records[2]) is state


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rs: rs.pop(1), "seq 2 missing"),
        (lambda rs: rs.__setitem__(1, seal({**rs[1], "prev_hash": "f" * 64})), "prev_hash"),
        (lambda rs: rs.__setitem__(1, {**rs[1], "actor": "mallory"}), "hash does not match"),
    ],
)
def test_folding_a_broken_log_fails_loudly(change: Any, message: str) -> None:
    records, _ = history()
    change(records)

    with pytest.raises(ChainError, match=message):
        fold(records)


def test_records_of_unknown_types_still_advance_the_chain() -> None:
    records, state = decide_and_seal(TeamState(), START)
    future = seal(
        {**records[0], "type": "call.recorded", "seq": 2, "prev_hash": state.last_hash, "data": {}}
    )

    after = apply_record(state, future)

    assert (after.seq, after.last_hash) == (2, future["hash"])
    assert after.calls == state.calls


def envelope(raw: bytes | dict[str, Any]) -> CommandEnvelope:
    """The envelope the decider decodes from a commands-topic record, once."""
    return MAPPER.decode_command_envelope(raw)


def test_envelopes_from_bytes_or_dicts_and_typed_commands_decide_alike() -> None:
    as_dict = MAPPER.encode_command(START)

    typed, _ = decide_and_seal(TeamState(), START)
    from_dict, _ = decide_and_seal(TeamState(), envelope(as_dict))
    from_bytes, _ = decide_and_seal(TeamState(), envelope(json.dumps(as_dict).encode()))

    assert typed == from_dict == from_bytes


def test_an_unknown_command_type_is_rejected() -> None:
    raw = envelope({**MAPPER.encode_command(START), "type": "call.record", "command_id": "x1"})

    records, state = decide_and_seal(TeamState(), raw)

    assert MAPPER.decode_event(records[0]).data == CommandRejected(
        command_id="x1", command_type="call.record", reason="unknown_command"
    )
    assert decide_and_seal(state, raw) == ([], state)


def test_a_newer_command_version_is_rejected_as_unknown() -> None:
    raw = envelope({**MAPPER.encode_command(START), "version": 2})

    records, _ = decide_and_seal(TeamState(), raw)

    assert records[0]["data"]["reason"] == "unknown_command"


def test_command_data_breaking_its_schema_is_rejected() -> None:
    raw = envelope({**MAPPER.encode_command(START), "data": {"call_id": ""}})

    records, _ = decide_and_seal(TeamState(), raw)

    assert records[0]["data"] == {
        "command_id": "start-1",
        "command_type": "call.start",
        "reason": "malformed_command",
        "call_id": None,
    }


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        {"command_id": "x"},
        {**MAPPER.encode_command(START), "received_at": "yesterday"},
        {**MAPPER.encode_command(START), "data": {"topic": "\ud800"}},
    ],
)
def test_a_broken_envelope_cannot_be_answered_and_raises(raw: bytes | dict[str, Any]) -> None:
    with pytest.raises(MalformedEnvelope):
        envelope(raw)


def test_decided_ids_keep_about_the_last_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decided_module, "DECIDED_MAX", 4)
    monkeypatch.setattr(decided_module, "GENERATION_SIZE", 2)
    decided = DecidedIds()
    for index in range(9):
        decided = decided.add(f"c{index}", index)

    # At least DECIDED_MAX kept, whole generations dropped: between 4 and 4 + 2 ids.
    assert list(decided) == ["c4", "c5", "c6", "c7", "c8"]
    assert "c8" in decided and "c3" not in decided and len(decided) == 5


def test_decided_ids_forget_generations_older_than_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(decided_module, "GENERATION_SIZE", 2)
    day = decided_module.DECIDED_WINDOW_MS
    decided = DecidedIds().add("a", 0).add("b", 1).add("c", day).add("d", day + 1)

    assert list(decided.add("e", day + 2)) == ["c", "d", "e"]


def test_adding_a_known_id_changes_nothing() -> None:
    decided = DecidedIds().add("a", 0)

    assert decided.add("a", 5) is decided


def test_a_command_forgotten_long_ago_is_decided_again() -> None:
    state = given(START)
    later = parse_millis(START.received_at) + decided_module.DECIDED_WINDOW_MS + 1
    many = DecidedIds(generations=(dict(state.decided.generations[0]), {"other": later}))
    state = msgspec.structs.replace(state, decided=many.add("another", later))

    assert "start-1" not in state.decided
    assert decide(state, START)[0] == CommandRejected(
        command_id="start-1", command_type="call.start", reason="already_in_call", call_id="c1"
    )


def test_a_typed_command_must_carry_the_contract_s_time() -> None:
    sloppy = msgspec.structs.replace(START, received_at="2026-11-23T19:30:00Z")

    with pytest.raises(MalformedEnvelope, match="received_at"):
        decide_and_seal(TeamState(), sloppy)


def test_the_state_survives_serialisation() -> None:
    _, state = history()

    assert state_from_bytes(state_to_bytes(state)) == state
