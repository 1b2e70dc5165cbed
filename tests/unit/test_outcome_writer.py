"""Outcomes ride out an unavailable store: retried at once, then queued (bounded), never lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from schemas.commands import StartCall
from streams.outcome_writer import OutcomeWriter
from streams.outcomes import InMemoryOutcomeRecorder, outcomes_of
from streams.ports import OutcomesUnavailable
from tests.contracts import decided_records


class FlakyOutcomes(InMemoryOutcomeRecorder):
    """A store that fails while `down` (and for the next `failures` calls)."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures
        self.down = False
        self.calls = 0

    def record(self, rows: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.down or self.failures > 0:
            self.failures -= 1
            raise OutcomesUnavailable("connection refused")
        super().record(rows)


def rows(team: str) -> list[dict[str, Any]]:
    return outcomes_of(decided_records(team, StartCall(call_id="c1")))


def writer(store: FlakyOutcomes, max_queued_events: int = 1000) -> OutcomeWriter:
    return OutcomeWriter(
        store, first_backoff=0.001, max_backoff=0.01, max_queued_events=max_queued_events
    )


async def test_a_blip_is_retried_before_the_decider_moves_on() -> None:
    store = FlakyOutcomes(failures=2)
    outcomes = writer(store)

    await outcomes.record(rows("a"))

    assert len(store.rows) == 1 and store.calls == 3 and outcomes.queued == 0


async def test_while_the_store_is_down_outcomes_queue_and_are_recorded_when_it_is_back() -> None:
    store = FlakyOutcomes()
    store.down = True
    outcomes = writer(store)

    for team in ("a", "b", "c"):
        await asyncio.wait_for(outcomes.record(rows(team)), 1)  # the decider goes on
    assert store.rows == {} and outcomes.queued == 3

    store.down = False
    assert await outcomes.drain(5)

    assert {row["team_id"] for row in store.rows.values()} == {"a", "b", "c"}
    assert outcomes.queued == 0


async def test_a_full_queue_holds_the_decider_until_the_store_takes_it() -> None:
    store = FlakyOutcomes()
    store.down = True
    outcomes = writer(store, max_queued_events=2)
    await outcomes.record(rows("a"))
    await outcomes.record(rows("b"))

    blocked = asyncio.ensure_future(outcomes.record(rows("c")))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(blocked), 0.1)
    assert outcomes.queued == 2

    store.down = False
    await asyncio.wait_for(blocked, 5)
    assert await outcomes.drain(5)
    assert {row["team_id"] for row in store.rows.values()} == {"a", "b", "c"}


async def test_outcomes_without_events_count_against_the_queue_bound() -> None:
    store = FlakyOutcomes()
    store.down = True
    outcomes = writer(store, max_queued_events=2)
    eventless = [{**rows(team)[0], "events": []} for team in "abc"]  # heartbeats' outcomes
    await outcomes.record([eventless[0]])
    await outcomes.record([eventless[1]])

    blocked = asyncio.ensure_future(outcomes.record([eventless[2]]))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.shield(blocked), 0.1)

    store.down = False
    await asyncio.wait_for(blocked, 5)
    assert await outcomes.drain(5)
    assert len(store.rows) == 3
