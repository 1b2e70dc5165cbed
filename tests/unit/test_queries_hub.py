"""The change hub: one read per notification, fanned out to the team's clients, slow ones cut off.

The hub's reads of the read model are served from memory (tests/memoryhub.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message

from queries import hub as hub_module
from queries.hub import Subscriber
from queries.stream import SseWriter
from schemas.sse import KEEPALIVE
from tests.memoryhub import InMemoryHub

TEAM, OTHER = "team-a", "team-b"


async def _received(subscriber: Subscriber, count: int) -> list[int | None]:
    async def take() -> list[int | None]:
        changes = [await subscriber.queue.get() for _ in range(count)]
        return [None if change is None else change.seq for change in changes]

    return await asyncio.wait_for(take(), 2.0)


async def _settled(hub: InMemoryHub) -> None:
    """Return once no fetch is running."""
    while hub._fetching:
        await asyncio.gather(*list(hub._fetching.values()))


async def test_a_change_reaches_every_client_of_its_team_and_no_other() -> None:
    hub = InMemoryHub()
    first, second = await hub.subscribe(TEAM), await hub.subscribe(TEAM)
    elsewhere = await hub.subscribe(OTHER)

    hub.commit(TEAM, "presence", "call")

    assert await _received(first, 2) == [1, 2]
    assert await _received(second, 2) == [1, 2]
    await _settled(hub)
    assert elsewhere.queue.empty()
    await hub.close()


async def test_a_client_gets_only_changes_committed_after_it_subscribed() -> None:
    hub = InMemoryHub()
    hub.commit(TEAM, "presence", "presence")  # nobody listens: nothing is read

    subscriber = await hub.subscribe(TEAM)
    hub.commit(TEAM, "call")

    assert await _received(subscriber, 1) == [3]
    await hub.close()


async def test_a_team_whose_clients_left_starts_afresh_for_its_next_client() -> None:
    hub = InMemoryHub()
    first = await hub.subscribe(TEAM)
    hub.commit(TEAM, "presence")
    assert await _received(first, 1) == [1]
    hub.unsubscribe(first)
    hub.commit(TEAM, "presence", "presence")

    later = await hub.subscribe(TEAM)
    hub.commit(TEAM, "call")

    assert await _received(later, 1) == [4]
    await hub.close()


async def test_changes_are_read_once_for_all_clients_of_a_team() -> None:
    hub = InMemoryHub()
    subscribers = [await hub.subscribe(TEAM) for _ in range(50)]
    await _settled(hub)
    reads = hub.reads

    hub.commit(TEAM, "presence")

    for subscriber in subscribers:
        assert await _received(subscriber, 1) == [1]
    await _settled(hub)
    assert hub.reads == reads + 1
    await hub.close()


async def test_a_slow_client_is_cut_off_without_holding_back_the_others() -> None:
    hub = InMemoryHub(queue_limit=2)
    slow, fast = await hub.subscribe(TEAM), await hub.subscribe(TEAM)

    hub.commit(TEAM, "presence", "presence")
    assert await _received(fast, 2) == [1, 2]
    hub.commit(TEAM, "presence", "presence")
    assert await _received(fast, 2) == [3, 4]

    assert slow.overflowed and not fast.overflowed
    assert await _received(slow, 1) == [None]  # its stream ends; the client resumes
    await hub.close()


async def test_the_last_client_leaving_forgets_the_team() -> None:
    hub = InMemoryHub()
    first, second = await hub.subscribe(TEAM), await hub.subscribe(TEAM)
    assert hub.clients() == 2

    hub.unsubscribe(first)
    hub.unsubscribe(second)
    hub.unsubscribe(second)  # twice is harmless
    await _settled(hub)
    reads = hub.reads
    hub.commit(TEAM, "presence")
    await _settled(hub)

    assert hub.clients() == 0
    assert hub.reads == reads  # no client: the change is not read
    await hub.close()


async def test_reached_answers_at_once_when_the_team_is_there() -> None:
    hub = InMemoryHub()
    hub.commit(TEAM, "presence", "presence")

    assert await hub.reached(TEAM, 2, timeout=0.0)
    assert not await hub.reached(TEAM, 3, timeout=0.01)


async def test_reached_wakes_when_the_team_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "RECHECK_SECONDS", 60.0)  # only the notification wakes it
    hub = InMemoryHub()
    waiting = asyncio.create_task(hub.reached(TEAM, 1, timeout=30.0))
    await asyncio.sleep(0)  # the waiter reads the position and waits

    hub.commit(TEAM, "presence")

    assert await asyncio.wait_for(waiting, 2.0)


async def test_clients_share_a_snapshot_read_until_the_hub_reads_a_newer_change() -> None:
    hub = InMemoryHub()
    gate = asyncio.Event()
    reads: list[str] = []

    def read(label: str) -> Callable[[], Awaitable[str]]:
        async def snapshot() -> str:
            reads.append(label)
            await gate.wait()
            return label

        return snapshot

    early = [await hub.subscribe(TEAM) for _ in range(3)]
    sharing = [
        asyncio.create_task(hub.shared_snapshot(s, read(f"early {n}"))) for n, s in enumerate(early)
    ]
    await asyncio.sleep(0)
    # Registered after the read began, but before any newer change: the read's position is at
    # or past all it could miss.
    joining = await hub.subscribe(TEAM)
    sharing.append(asyncio.create_task(hub.shared_snapshot(joining, read("joining"))))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*sharing) == ["early 0"] * 4

    hub.commit(TEAM, "presence")
    await _received(joining, 1)  # the hub has read change 1
    late = await hub.subscribe(TEAM)  # the snapshot read may be older than change 1: not shared
    assert await hub.shared_snapshot(late, read("late")) == "late"
    assert await hub.shared_snapshot(await hub.subscribe(TEAM), read("later")) == "late"
    assert reads == ["early 0", "late"]
    await hub.close()


async def test_a_failed_snapshot_read_is_not_shared_with_later_clients() -> None:
    hub = InMemoryHub()

    async def failing() -> str:
        raise OSError("database down")

    async def working() -> str:
        return "read"

    with pytest.raises(OSError):
        await hub.shared_snapshot(await hub.subscribe(TEAM), failing)

    assert await hub.shared_snapshot(await hub.subscribe(TEAM), working) == "read"
    await hub.close()


async def test_the_hub_keeps_alive_only_streams_quiet_for_half_its_period() -> None:
    hub = InMemoryHub()
    hub.keepalive = 10.0
    quiet, busy, opening = [await hub.subscribe(TEAM) for _ in range(3)]
    sent: dict[str, list[bytes]] = {"quiet": [], "busy": []}
    for name, subscriber in (("quiet", quiet), ("busy", busy)):

        async def send(message: Message, name: str = name) -> None:
            sent[name].append(message["body"])

        subscriber.attach(SseWriter(send, 0, 10))
    assert quiet.writer is not None
    quiet.writer.last_write -= 5.0

    hub.keep_alive()

    assert sent == {"quiet": [KEEPALIVE], "busy": []}
    assert opening.queue.empty()  # its opening is still being read: nothing to keep alive
    await hub.close()


async def test_joining_a_team_already_followed_reads_nothing() -> None:
    hub = InMemoryHub()
    await hub.subscribe(TEAM)
    await _settled(hub)
    reads = hub.reads

    joined = [await hub.subscribe(TEAM) for _ in range(100)]
    await _settled(hub)
    assert hub.reads == reads  # 10,000 clients connecting do not read the team 10,000 times

    hub.commit(TEAM, "presence")
    for subscriber in joined:
        assert await _received(subscriber, 1) == [1]
    await hub.close()
