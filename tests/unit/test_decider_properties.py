"""Properties of the decider over random histories with redeliveries: chained, deterministic,
decided once per command, rules kept, the state the fold of the log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from schemas.commands import (
    Command,
    CommandPayload,
    EndCall,
    ExpirePresence,
    JoinCall,
    LeaveCall,
    RecordHeartbeat,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.envelope import verify_chain
from schemas.mapper import MAPPER
from streams.domain import TeamState, decide_and_seal, fold, recorded
from streams.domain.testing import at_time

USERS = st.sampled_from(["ann", "bob", "cat"])
CALLS = st.sampled_from(["c1", "c2", "c3"])
DEVICES = st.sampled_from(["d1", "d2"])

PAYLOADS: st.SearchStrategy[CommandPayload] = st.one_of(
    st.builds(StartCall, call_id=CALLS, invitees=st.lists(USERS, max_size=2).map(tuple)),
    st.builds(JoinCall, call_id=CALLS),
    st.builds(LeaveCall, call_id=CALLS),
    st.builds(EndCall, call_id=CALLS),
    st.builds(SetMuted, call_id=CALLS, muted=st.booleans()),
    st.builds(
        SetPresence,
        status=st.sampled_from(["available", "busy", "away", "offline"]),
        device_id=DEVICES,
        region=st.sampled_from([msgspec.UNSET, "eu-west", "us-east"]),
    ),
    st.builds(RecordHeartbeat, device_id=DEVICES),
    st.builds(ExpirePresence),
)
# (actor, payload, seconds since the previous command, then redeliver these earlier commands):
# Kafka delivers at least once, so any command since the last committed offset comes again.
STEPS = st.lists(
    st.tuples(USERS, PAYLOADS, st.integers(0, 40), st.lists(st.integers(0, 1000), max_size=2)),
    max_size=40,
)


@dataclass
class History:
    records: list[dict[str, Any]] = field(default_factory=list)
    state: TeamState = field(default_factory=TeamState)
    commands: list[Command] = field(default_factory=list)
    # How many deliveries of each command appended records (decided it).
    decisions: Counter[str] = field(default_factory=Counter)
    # Per heartbeat that appended records: its device as the team saw it before and after.
    heartbeats_heard: list[tuple[str | None, str | None]] = field(default_factory=list)


def run(steps: list[Any]) -> History:
    """Deliver each command, then redeliver some earlier ones, as a decider would see them."""
    history, clock = History(), 0
    for index, (actor, payload, pause, redeliveries) in enumerate(steps):
        clock += pause
        command = Command(
            command_id=f"k{index}", team_id="t", actor=actor, received_at=at_time(clock),
            data=payload,
        )  # fmt: skip
        history.commands.append(command)
        again = [history.commands[pick % len(history.commands)] for pick in redeliveries]
        for delivered in [command, *again]:
            envelope = MAPPER.decode_command_envelope(MAPPER.command_to_bytes(delivered))
            before = history.state
            new, history.state = decide_and_seal(history.state, envelope, presence_ttl=30)
            history.records += new
            history.decisions[delivered.command_id] += bool(new)
            if new and isinstance(delivered.data, RecordHeartbeat):
                seen = (_seen(before, delivered), _seen(history.state, delivered))
                history.heartbeats_heard.append(seen)
    return history


def _seen(state: TeamState, command: Command) -> str | None:
    """The status the team sees of the device a heartbeat comes from (None: unknown)."""
    assert isinstance(command.data, RecordHeartbeat)
    user = state.presence.get(command.actor)
    device = user.devices.get(command.data.device_id) if user else None
    return None if device is None else device.effective


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS)
def test_any_history_is_a_valid_chain_decided_once_per_command(steps: list[Any]) -> None:
    history = run(steps)

    assert verify_chain(history.records) == []
    assert all(count == 1 for count in history.decisions.values() if count), history.decisions
    causes = [r["causation_id"] for r in history.records]
    assert causes == sorted(causes, key=causes.index), "a command's records are consecutive"
    for command in history.commands:
        produced = history.decisions[command.command_id] == 1
        silent_kinds = (RecordHeartbeat, ExpirePresence)
        assert produced or isinstance(command.data, silent_kinds), command


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS)
def test_any_history_decides_the_same_twice(steps: list[Any]) -> None:
    assert run(steps).records == run(steps).records


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS)
def test_a_user_is_in_at_most_one_call_and_the_log_rebuilds_the_calls(steps: list[Any]) -> None:
    history = run(steps)
    records, state = history.records, history.state

    memberships = [u for call in state.calls.values() for u in call.participants]
    assert len(memberships) == len(set(memberships))
    assert state.user_calls == {u: c.call_id for c in state.calls.values() for u in c.participants}
    assert all(call.participants for call in state.calls.values())

    # Heartbeats that change nothing a person sees move only leases, which no event records.
    assert fold(records) == recorded(state)


@settings(database=None, max_examples=200, deadline=None)
@for_all(STEPS)
def test_a_heartbeat_records_events_only_when_a_person_sees_a_change(steps: list[Any]) -> None:
    history = run(steps)

    for before, after in history.heartbeats_heard:
        assert before in (None, "offline") and after not in (None, "offline"), (before, after)
