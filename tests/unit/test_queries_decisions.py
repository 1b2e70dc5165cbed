"""Requests waiting for a command's outcome wake when the worker records it, and only then."""

from __future__ import annotations

import asyncio

import pytest

from queries.decisions import Decisions


async def test_a_waiter_wakes_for_its_command_only() -> None:
    decisions = Decisions()
    with decisions.waiting("c1") as mine, decisions.waiting("c2") as other:
        decisions.recorded("c1")
        await asyncio.wait_for(mine, 1)
        assert not other.done()
    assert decisions.waiting_count() == 0


async def test_a_waiter_without_a_command_id_wakes_for_any_outcome() -> None:
    decisions = Decisions()
    with decisions.waiting(None) as any_outcome:
        assert not any_outcome.done()
        decisions.recorded("c9")
        await asyncio.wait_for(any_outcome, 1)


async def test_an_outcome_recorded_before_waiting_wakes_nobody_later() -> None:
    decisions = Decisions()
    decisions.recorded("c1")  # nobody waits: nothing is kept
    with decisions.waiting("c1") as late:
        assert not late.done()
    assert decisions.waiting_count() == 0


async def test_a_timed_out_waiter_leaves_no_registration_and_no_error() -> None:
    decisions = Decisions()
    with decisions.waiting("c1") as woken, decisions.waiting("c1") as shared:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(woken, 0.01)
        assert decisions.waiting_count() == 2
        decisions.recorded("c1")  # the cancelled future is skipped, the other one wakes
        await asyncio.wait_for(shared, 1)
    assert decisions.waiting_count() == 0
