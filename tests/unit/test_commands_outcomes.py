"""Command outcomes: the contract's body of a stored row, and waiting for a decision."""

from __future__ import annotations

import asyncio
from typing import Any

from commands.backlog import Backlog
from commands.outcomes import DecidedReads, OutcomeWaiter, load_decided
from db.outcomes import BareOutcome, outcome_body, outcome_notice
from tests.fakedb import ScriptedEngine, row

DATABASE = "postgresql+psycopg://chorus:secret@localhost:5432/chorus"


def _stored(status: str, reason: str | None = None, events: list[Any] | None = None) -> Any:
    return row(
        command_id="cmd",
        team_id="team",
        actor="user",
        status=status,
        reason=reason,
        position="c0.3" if status == "pending" else "12",
        command_position="c0.3",
        events=events or [],
    )


def test_an_accepted_outcome_has_its_events_and_no_reason() -> None:
    events = [{"type": "presence.set", "seq": 12}]

    assert outcome_body(_stored("accepted", events=events)) == {
        "command_id": "cmd",
        "status": "accepted",
        "position": "12",
        "events": events,
    }


def test_a_rejected_outcome_says_why() -> None:
    assert outcome_body(_stored("rejected", reason="call_ended")) == {
        "command_id": "cmd",
        "status": "rejected",
        "position": "12",
        "events": [],
        "reason": "call_ended",
    }


def test_a_pending_outcome_has_the_commands_position() -> None:
    assert outcome_body(_stored("pending")) == {
        "command_id": "cmd",
        "status": "pending",
        "position": "c0.3",
        "events": [],
    }


async def test_only_a_decided_outcome_is_decided() -> None:
    accepted, pending = _stored("accepted"), _stored("pending")
    engine = ScriptedEngine([accepted], [pending], [])

    found = [await load_decided(engine.typed(), "cmd") for _ in range(3)]

    assert found == [accepted, None, None]


async def test_a_wait_returns_an_outcome_already_decided() -> None:
    decided = _stored("rejected", reason="call_ended")
    waiter = OutcomeWaiter(ScriptedEngine([decided]).typed(), DATABASE, Backlog(10))

    assert await waiter.wait("cmd", 0.05) is decided


async def test_a_wait_for_an_outcome_still_pending_ends_with_none() -> None:
    engine = ScriptedEngine(*[[_stored("pending")]] * 10)
    waiter = OutcomeWaiter(engine.typed(), DATABASE, Backlog(10))

    assert await asyncio.wait_for(waiter.wait("cmd", 0.05), 2.0) is None
    assert engine.executed  # it looked before giving up


async def test_requests_waiting_together_read_their_outcomes_in_one_query() -> None:
    decided = [
        row(command_id=f"cmd{n}", status="accepted", position=str(n), events=[]) for n in range(3)
    ]
    engine = ScriptedEngine(decided[:2])  # cmd2 has no row yet: unknown, as pending
    reads = DecidedReads(engine.typed())

    found = await asyncio.gather(*(reads.decided(f"cmd{n}") for n in range(3)))

    assert found == [decided[0], decided[1], None]
    assert len(engine.executed) == 1


async def test_a_failed_read_fails_each_request_reading_with_it() -> None:
    reads = DecidedReads(ScriptedEngine(OSError("database down")).typed())

    found = await asyncio.gather(reads.decided("a"), reads.decided("b"), return_exceptions=True)

    assert [type(each) for each in found] == [OSError, OSError]


def test_a_notification_names_its_command_and_carries_an_outcome_with_no_events() -> None:
    assert outcome_notice("cmd") == ("cmd", None)
    assert outcome_notice("cmd 12") == ("cmd", BareOutcome("cmd", "12"))
    assert outcome_body(BareOutcome("cmd", "12")) == outcome_body(_stored("accepted"))


async def test_a_wait_expected_before_its_append_is_answered_by_the_notification_alone() -> None:
    engine = ScriptedEngine()  # any read would fail: nothing is scripted
    waiter = OutcomeWaiter(engine.typed(), DATABASE, Backlog(10))
    waiter._listening.set()  # (its LISTEN connection, which this test does not open)

    with waiter.expecting("cmd") as expected:
        waiting = asyncio.ensure_future(waiter.wait("cmd", 5.0, expected))
        await asyncio.sleep(0)
        waiter._wake("other 3")
        waiter._wake("cmd 12")
        found = await asyncio.wait_for(waiting, 2.0)

    assert found == BareOutcome("cmd", "12")
    assert not engine.executed
    assert not waiter._waiters  # nothing left registered


async def test_a_notification_without_the_outcome_has_it_read() -> None:
    decided = _stored("rejected", reason="call_ended")
    engine = ScriptedEngine([decided])
    waiter = OutcomeWaiter(engine.typed(), DATABASE, Backlog(10))
    waiter._listening.set()

    with waiter.expecting("cmd") as expected:
        waiting = asyncio.ensure_future(waiter.wait("cmd", 5.0, expected))
        await asyncio.sleep(0)
        assert not engine.executed  # expected from before the append: no first read
        waiter._wake("cmd")
        found = await asyncio.wait_for(waiting, 2.0)

    assert found is decided
    assert len(engine.executed) == 1


def test_every_notification_takes_its_command_off_the_backlog() -> None:
    backlog = Backlog(10)
    waiter = OutcomeWaiter(ScriptedEngine().typed(), DATABASE, backlog)
    backlog.add("a")
    backlog.add("b")

    waiter._wake("a 12")  # no one waits for it: decided all the same
    waiter._wake("c")  # another process's command

    assert len(backlog) == 1
