"""A revocation ends the live streams opened with the tokens it revokes, and only those."""

from __future__ import annotations

import asyncio

from starlette.types import Message

from auth.revocations import Revocations
from auth.tokens import Identity
from queries.callers import LiveCallers
from queries.stream import SseWriter


async def _sink(message: Message) -> None:
    return None


def _writer() -> SseWriter:
    return SseWriter(_sink, 0, 10)


async def _cut_off(writer: SseWriter) -> None:
    """Return once `writer` is ended (the revocation reaches the loop from another thread)."""

    async def ended() -> None:
        while writer.ended is None:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(ended(), 5)


async def test_a_revocation_read_in_another_thread_cuts_off_the_older_tokens_streams() -> None:
    revocations = Revocations()
    callers = LiveCallers(revocations)
    callers.watch_revocations(asyncio.get_running_loop())
    old, fresh, other = _writer(), _writer(), _writer()
    callers.add(Identity("bob", 2_000_000_000, issued_at=100.0), "t", old)
    callers.add(Identity("bob", 2_000_000_000, issued_at=300.0), "t", fresh)
    callers.add(Identity("carol", 2_000_000_000, issued_at=100.0), "t", other)

    await asyncio.to_thread(revocations.apply, "bob", 200.0)
    await _cut_off(old)

    assert old.ended is True  # cut off: the client reconnects and is refused then
    assert fresh.ended is None and other.ended is None


def test_a_stream_opened_after_its_revocation_is_cut_off_at_once() -> None:
    async def scenario() -> None:
        revocations = Revocations()
        revocations.apply("bob", 200.0)
        callers = LiveCallers(revocations)
        writer = _writer()
        callers.add(Identity("bob", 2_000_000_000, issued_at=100.0), "t", writer)
        assert writer.ended is True
        callers.discard("bob", writer)
        assert len(callers) == 0

    asyncio.run(scenario())


async def test_the_end_of_a_membership_cuts_off_that_teams_streams_only() -> None:
    revocations = Revocations()
    callers = LiveCallers(revocations)
    callers.watch_revocations(asyncio.get_running_loop())
    removed_from, still_in = _writer(), _writer()
    callers.add(Identity("bob", 2_000_000_000, issued_at=100.0), "t1", removed_from)
    callers.add(Identity("bob", 2_000_000_000, issued_at=100.0), "t2", still_in)

    await asyncio.to_thread(revocations.membership_ended, "t1", "bob")
    await _cut_off(removed_from)

    assert still_in.ended is None
    revocations.check(Identity("bob", 2_000_000_000, issued_at=100.0))  # the token stays valid
