"""Given / when / then for a team's decider, without a broker (a test aid, as `faust.testing`).

    state = given(command("alice", StartCall(call_id="c1")))
    events, state = when(state, command("bob", JoinCall(call_id="c1"), at=5))
    assert events == [ParticipantJoined(call_id="c1", user_id="bob")]

Commands are timed in seconds after `BASE_TIME`; their ids count up (`cmd-1`, `cmd-2`...).
`when` goes the whole way (decode, decide, seal, fold, decode the records again), so a test
of a rule also tests the mapper and the chain.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from schemas.clock import format_time, parse_time
from schemas.commands import Command, CommandPayload
from schemas.envelope import verify_chain
from schemas.events import Event
from schemas.mapper import MAPPER
from streams.domain.decide import DEFAULT_PRESENCE_TTL
from streams.domain.sealing import decide_and_seal, fold
from streams.domain.state import TeamState

#: The instant `at=0` stands for.
BASE_TIME = "2026-11-23T19:30:00.000Z"
#: The team commands belong to unless told otherwise.
TEAM = "team-1"

_ids = itertools.count(1)


def at_time(seconds: float) -> str:
    """The contract's time string `seconds` after BASE_TIME."""
    return format_time(parse_time(BASE_TIME) + timedelta(seconds=seconds))


def command(
    actor: str,
    payload: CommandPayload,
    *,
    at: float = 0.0,
    team_id: str = TEAM,
    command_id: str | None = None,
) -> Command:
    """A command `actor` sends `at` seconds after BASE_TIME."""
    return Command(
        command_id=command_id or f"cmd-{next(_ids)}",
        team_id=team_id,
        actor=actor,
        received_at=at_time(at),
        data=payload,
    )


def given(
    *commands: Command,
    state: TeamState | None = None,
    presence_ttl: float = DEFAULT_PRESENCE_TTL,
) -> TeamState:
    """The state after deciding `commands` in order, from `state` (default: a new team)."""
    current = TeamState() if state is None else state
    for each in commands:
        _, current = decide_and_seal(current, each, presence_ttl=presence_ttl)
    return current


def when(
    state: TeamState, each: Command, *, presence_ttl: float = DEFAULT_PRESENCE_TTL
) -> tuple[list[Event], TeamState]:
    """The events `each` causes (decoded back from its sealed records) and the state after."""
    records, after = decide_and_seal(state, each, presence_ttl=presence_ttl)
    assert verify_chain(records, partial=True) == [], "records must chain"
    assert fold(records, state).seq == after.seq, "records must fold to the returned state"
    return [MAPPER.decode_event(record).data for record in records], after
