"""The read side through HTTP only, as a client sees it: reads, ?after, live queries over SSE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.sse import ServerEvent
from tests.live_reader import LiveReader
from tests.stack import ChorusStack, Client


def _stack(stack: ChorusStack) -> tuple[str, str, Client, Client, str]:
    stack.wait_worker_ready(stack.start("worker"))
    commands = stack.start("commands")
    queries = stack.start("queries")
    alice = stack.client(commands).sign_up("alice")
    bob = stack.client(commands).sign_up("bob")
    team_id = alice.new_team(bob)
    return commands, queries, alice, bob, team_id


def _get(queries: str, client: Client, path: str) -> httpx.Response:
    return httpx.get(f"{queries}{path}", headers=client.headers(), timeout=15)


def test_a_presence_change_reaches_another_members_stream(stack: ChorusStack) -> None:
    _, queries, alice, bob, team_id = _stack(stack)
    reader = LiveReader(queries, str(bob.token), team_id).start()
    try:
        reader.wait_until(lambda events: bool(events) and events[0].event == "snapshot")
        assert reader.status == 200

        alice.post(f"/v1/teams/{team_id}/presence", {"status": "busy", "device_id": "laptop"})

        reader.wait_until(
            lambda events: any(
                e.event == "presence" and e.data["user_id"] == alice.user_id for e in events
            )
        )
    finally:
        reader.stop()
    change = next(e for e in reader.events if e.event == "presence")
    assert change.data["status"] == "busy"
    assert [d["device_id"] for d in change.data["devices"]] == ["laptop"]
    assert int(change.id or 0) > int(reader.events[0].id or 0)


def test_a_quiet_stream_sends_comments_to_keep_proxies_open(
    stack: ChorusStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_SSE_KEEPALIVE", "0.3")
    _, queries, _, bob, team_id = _stack(stack)
    reader = LiveReader(queries, str(bob.token), team_id).start()
    try:
        deadline = time.monotonic() + 10
        while reader.parser.comments < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop()
    assert reader.parser.comments >= 2
    assert [e.event for e in reader.events] == ["snapshot"]


def _live_clients(queries: str) -> float:
    text = httpx.get(f"{queries}/metrics", timeout=10).text
    return next(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "chorus_live_clients"
        for sample in family.samples
    )


def _until(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_a_client_that_goes_away_is_dropped_and_the_others_stream_on(stack: ChorusStack) -> None:
    _, queries, alice, bob, team_id = _stack(stack)
    readers = [LiveReader(queries, str(bob.token), team_id).start() for _ in range(3)]
    try:
        for reader in readers:
            reader.wait_until(lambda events: bool(events))
        assert _until(lambda: _live_clients(queries) == 3)

        readers[0].stop()  # its connection closes: nothing is written to it, it is dropped
        readers[1].stop()
        assert _until(lambda: _live_clients(queries) == 1)
        alice.post(f"/v1/teams/{team_id}/presence", {"status": "away", "device_id": "d"})
        readers[2].wait_until(lambda events: any(e.event == "presence" for e in events))
    finally:
        for reader in readers:
            reader.stop()
    assert _until(lambda: _live_clients(queries) == 0)


def test_reads_after_a_command_always_see_it(stack: ChorusStack) -> None:
    _, queries, alice, bob, team_id = _stack(stack)
    for index in range(20):
        status = ("available", "busy", "away")[index % 3]
        sent = alice.post(f"/v1/teams/{team_id}/presence", {"status": status, "device_id": "d"})
        assert sent.status_code == 202
        seen = _get(queries, bob, f"/v1/teams/{team_id}/presence?after={sent.json()['position']}")
        assert seen.status_code == 200, seen.text
        member = next(m for m in seen.json()["members"] if m["user_id"] == alice.user_id)
        assert member["status"] == status
    started = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": [bob.user_id]})
    call = _get(
        queries, bob, f"/v1/calls/{started.json()['call_id']}?after={started.json()['position']}"
    )
    assert call.status_code == 200, call.text
    assert call.json()["state"] == "active"
    assert [p["user_id"] for p in call.json()["participants"]] == [alice.user_id]
    listed = _get(queries, bob, f"/v1/teams/{team_id}/calls?state=active")
    assert [c["call_id"] for c in listed.json()["calls"]] == [started.json()["call_id"]]
    assert (
        _get(queries, bob, f"/v1/teams/{team_id}/presence?after=not-a-position").status_code == 400
    )


def test_a_member_of_one_team_never_sees_another(stack: ChorusStack) -> None:
    commands, queries, alice, bob, team_a = _stack(stack)
    eve = stack.client(commands).sign_up("eve")
    team_b = eve.new_team()
    started = alice.post(f"/v1/teams/{team_a}/calls", {"invitees": []}, Prefer="wait=10")
    call_id = started.json()["call_id"]

    assert _get(queries, eve, f"/v1/teams/{team_a}/presence").status_code == 403
    assert _get(queries, eve, f"/v1/teams/{team_a}/calls").status_code == 403
    assert _get(queries, eve, f"/v1/calls/{call_id}").status_code in (403, 404)
    denied = httpx.get(f"{queries}/v1/teams/{team_a}/live", headers=eve.headers(), timeout=10)
    assert denied.status_code == 403
    assert _get(queries, eve, f"/v1/teams/{team_a}/presence?after=1").status_code == 403

    outsider = LiveReader(queries, str(eve.token), team_b).start()
    insider = LiveReader(queries, str(bob.token), team_a).start()
    try:
        for reader in (outsider, insider):
            reader.wait_until(lambda events: bool(events) and events[0].event == "snapshot")
        sent = [
            alice.post(f"/v1/teams/{team_a}/presence", {"status": "busy", "device_id": f"{index}"})
            for index in range(10)
        ]
        assert all(answer.status_code == 202 for answer in sent), [a.text for a in sent]
        # Team A's changes are in its read model and were fanned out to its own members' streams
        # before team B's marker is sent: a leak would reach eve's stream ahead of the marker.
        last = sent[-1].json()["position"]
        assert _get(queries, alice, f"/v1/teams/{team_a}/presence?after={last}").status_code == 200
        insider.wait_until(lambda events: _devices_of(events, alice.user_id) >= set("0123456789"))
        marker = eve.post(f"/v1/teams/{team_b}/presence", {"status": "away", "device_id": "e"})
        assert marker.status_code == 202
        outsider.wait_until(lambda events: any(e.event == "presence" for e in events))
    finally:
        outsider.stop()
        insider.stop()
    users = {e.data["user_id"] for e in outsider.events if e.event == "presence"}
    assert users == {eve.user_id}
    assert str(alice.user_id) not in str([e.data for e in outsider.events])


def _devices_of(events: list[ServerEvent], user_id: str | None) -> set[str]:
    """Device ids seen in `user_id`'s presence changes."""
    return {
        device["device_id"]
        for e in events
        if e.event == "presence" and e.data["user_id"] == user_id
        for device in e.data["devices"]
    }


def test_a_client_that_drops_and_resumes_misses_nothing_and_gets_nothing_twice(
    stack: ChorusStack,
) -> None:
    commands, queries, alice, bob, team_id = _stack(stack)
    steady = LiveReader(queries, str(bob.token), team_id).start()
    dropping = LiveReader(queries, str(alice.token), team_id).start()
    steady.wait_until(lambda events: bool(events))
    dropping.wait_until(lambda events: bool(events))
    burst = Burst(commands, queries, alice, team_id, dropping)
    try:
        final = asyncio.run(burst.run(500))
        assert burst.resumed is not None
        for reader in (steady, burst.resumed):
            reader.wait_until(lambda events: bool(events) and int(events[-1].id or 0) >= final, 60)
    finally:
        steady.stop()
        if burst.resumed is not None:
            burst.resumed.stop()
    resumed = burst.resumed
    assert steady.events[0].event == "snapshot" and dropping.events[0].event == "snapshot"
    assert all(e.event != "snapshot" for e in resumed.events)
    expected = _changes_after(steady.events, int(dropping.events[0].id or 0))
    assert _ids(dropping.events[1:] + resumed.events) == _ids(expected)
    assert dropping.events[1:] + resumed.events == expected
    assert len(expected) >= 500


class Burst:
    """500 presence changes; one client drops mid-burst and resumes before it ends."""

    def __init__(
        self, commands: str, queries: str, member: Client, team_id: str, dropping: LiveReader
    ) -> None:
        self.commands, self.queries, self.member, self.team_id = commands, queries, member, team_id
        self.dropping = dropping
        self.resumed: LiveReader | None = None

    async def run(self, count: int) -> int:
        semaphore = asyncio.Semaphore(8)
        async with httpx.AsyncClient(base_url=self.commands, timeout=30) as client:

            async def send(index: int) -> str:
                body = {
                    "status": ("available", "busy", "away")[index % 3],
                    "device_id": f"d{index % 4}",
                }
                async with semaphore:
                    answer = await client.post(
                        f"/v1/teams/{self.team_id}/presence",
                        json=body,
                        headers=self.member.headers(),
                    )
                assert answer.status_code == 202, answer.text
                return str(answer.json()["command_id"])

            third = count // 3
            ids = await asyncio.gather(*(send(i) for i in range(third)))
            deadline = time.monotonic() + 30
            while len(self.dropping.events) < 50:
                assert time.monotonic() < deadline, "the dropping client saw too little"
                await asyncio.sleep(0.01)
            await asyncio.to_thread(self.dropping.stop)
            ids += await asyncio.gather(*(send(i) for i in range(third, 2 * third)))
            self.resumed = await asyncio.to_thread(self._resume)
            ids += await asyncio.gather(*(send(i) for i in range(2 * third, count)))
            return max([await _decided_position(client, self.member, c) for c in ids])

    def _resume(self) -> LiveReader:
        token = str(self.member.token)
        last = self.dropping.last_id()
        return LiveReader(self.queries, token, self.team_id, last).start()


def _changes_after(events: list[ServerEvent], position: int) -> list[ServerEvent]:
    return [e for e in events[1:] if int(e.id or 0) > position]


def _ids(events: list[ServerEvent]) -> list[str | None]:
    return [e.id for e in events]


async def _decided_position(client: httpx.AsyncClient, member: Client, command_id: str) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = await client.get(f"/v1/commands/{command_id}", headers=member.headers())
        if answer.status_code == 200 and answer.json()["status"] != "pending":
            return int(answer.json()["position"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"command {command_id} never decided")
