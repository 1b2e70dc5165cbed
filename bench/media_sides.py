"""Where Chorus's offer URLs and tokens come from: the real stack, or the throwaway front.

The measurements only need, per call, an offer URL and a token per participant, plus the
moments a real client would live through (the click that starts a call, the join). The real
stack gives them through the public API; the front (bench/media_front.py) stands in for the
media service while that service cannot answer offers yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import httpx

from bench.harness import BenchStack
from devstack.processes import Child, wait_healthy
from devstack.server import free_port

PASSWORD = "benchmark password"


@dataclass
class Call:
    call_id: str
    starter: int
    offer_url: asyncio.Future[str]


class ChorusSide(Protocol):
    mode: str  # printed with the figures
    server_pid: int  # the media server; its process tree's CPU is measured

    async def setup(self, users: int) -> None: ...

    async def start_call(self, starter: int, invitees: list[int]) -> Call:
        """The click: returns once the call is accepted; its offer URL may come later."""

    async def join(self, call: Call, user: int) -> None:
        """The join command, decided (a no-op where there is no command side)."""

    def token(self, user: int) -> str: ...

    async def end(self, call: Call) -> None: ...

    async def close(self) -> None: ...


def start_front(workdir: Path) -> tuple[Child, str]:
    """The throwaway HTTP front over the in-process media core, in a process of its own."""
    port = free_port()
    child = Child(
        name="media-front",
        argv=[sys.executable, "-m", "bench.media_front", "--port", str(port)],
        env=dict(os.environ),
        log_path=workdir / "media-front.log",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    child.start()
    if wait_healthy([child], 60):
        child.stop()
        raise RuntimeError(f"the media front did not start:\n{child.log_tail(40)}")
    return child, f"http://127.0.0.1:{port}"


class FrontSide:
    """The in-process media core behind bench/media_front.py: no accounts, no Kafka."""

    mode = "in-process media core behind a throwaway HTTP front (no Kafka, no auth)"

    def __init__(self, url: str, pid: int) -> None:
        self.server_pid = pid
        self._http = httpx.AsyncClient(base_url=url, timeout=30)

    async def setup(self, users: int) -> None:
        return None

    async def start_call(self, starter: int, invitees: list[int]) -> Call:
        answer = await self._http.post("/v1/rooms")
        answer.raise_for_status()
        room = answer.json()
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ready.set_result(room["offer_url"])
        return Call(room["room_id"], starter, ready)

    async def join(self, call: Call, user: int) -> None:
        return None

    def token(self, user: int) -> str:
        return f"user-{user}"

    async def end(self, call: Call) -> None:
        (await self._http.delete(f"/v1/rooms/{call.call_id}")).raise_for_status()

    async def close(self) -> None:
        await self._http.aclose()


@dataclass
class StackSide:
    """The real stack: accounts in one team, calls started and joined over the public API, offer
    URLs read from the queries service's live stream (`media.offer_url` of each call)."""

    commands: str
    queries: str
    server_pid: int
    mode: str = "real stack (commands, worker, queries, media service; Kafka, PostgreSQL)"
    tokens: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    team_id: str = ""
    _waiting: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    _known: dict[str, str] = field(default_factory=dict)
    _live: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None

    @classmethod
    def start(cls, stack: BenchStack) -> StackSide:
        stack.start("worker")
        commands = stack.start("commands")
        queries = stack.start("queries")
        stack.start("media")
        process = stack.children[-1].process
        assert process is not None
        return cls(commands=commands, queries=queries, server_pid=process.pid)

    async def setup(self, users: int) -> None:
        self._http = httpx.AsyncClient(base_url=self.commands, timeout=30)
        emails = [f"bench-{uuid.uuid4().hex[:10]}@example.com" for _ in range(users)]
        for email in emails:
            body = {"email": email, "password": PASSWORD, "display_name": "Bench"}
            (await self._http.post("/v1/accounts", json=body)).raise_for_status()
            session = await self._http.post(
                "/v1/sessions", json={"email": email, "password": PASSWORD}
            )
            session.raise_for_status()
            self.tokens.append(session.json()["token"])
            self.user_ids.append(session.json()["user_id"])
        team = await self._http.post("/v1/teams", json={"name": "bench"}, headers=self._auth(0))
        team.raise_for_status()
        self.team_id = team.json()["team_id"]
        for email in emails[1:]:
            added = await self._http.post(
                f"/v1/teams/{self.team_id}/members", json={"email": email}, headers=self._auth(0)
            )
            added.raise_for_status()
        self._live = asyncio.create_task(self._follow())

    def _auth(self, user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    async def _follow(self) -> None:
        """Read the team's live stream; each call's offer URL resolves the waiting future."""
        url = f"{self.queries}/v1/teams/{self.team_id}/live"
        headers = {**self._auth(0), "Accept": "text/event-stream"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers, timeout=aiohttp.ClientTimeout()) as response,
        ):
            response.raise_for_status()
            async for raw in response.content:
                if raw.startswith(b"data: "):
                    self._seen(json.loads(raw[6:]))

    def _seen(self, data: dict[str, object]) -> None:
        calls = data.get("calls")
        for call in calls if isinstance(calls, list) else [data]:
            media = call.get("media") if isinstance(call, dict) else None
            if isinstance(media, dict) and media.get("offer_url"):
                call_id = str(call["call_id"])
                self._known[call_id] = str(media["offer_url"])
                waiting = self._waiting.get(call_id)
                if waiting is not None and not waiting.done():
                    waiting.set_result(self._known[call_id])

    async def start_call(self, starter: int, invitees: list[int]) -> Call:
        assert self._http is not None
        answer = await self._http.post(
            f"/v1/teams/{self.team_id}/calls",
            json={"invitees": [self.user_ids[u] for u in invitees]},
            headers=self._auth(starter),
        )
        answer.raise_for_status()
        call_id = answer.json()["call_id"]
        future = self._waiting.setdefault(call_id, asyncio.get_running_loop().create_future())
        if call_id in self._known and not future.done():
            future.set_result(self._known[call_id])
        return Call(call_id, starter, future)

    async def join(self, call: Call, user: int) -> None:
        assert self._http is not None
        answer = await self._http.post(
            f"/v1/calls/{call.call_id}/join",
            json={},
            headers={**self._auth(user), "Prefer": "wait=10"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"join not accepted: {answer.status_code} {answer.text}")

    def token(self, user: int) -> str:
        return self.tokens[user]

    async def end(self, call: Call) -> None:
        assert self._http is not None
        await self._http.post(
            f"/v1/calls/{call.call_id}/end",
            json={},
            headers={**self._auth(call.starter), "Prefer": "wait=10"},
        )
        self._waiting.pop(call.call_id, None)

    async def close(self) -> None:
        if self._live is not None:
            self._live.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._live
        if self._http is not None:
            await self._http.aclose()


async def media_answers(side: ChorusSide, timeout: float) -> str | None:
    """Why the side cannot run a call with audio (no offer URL in time), or None if it can."""
    call = await side.start_call(0, [])
    try:
        await asyncio.wait_for(asyncio.shield(call.offer_url), timeout)
    except TimeoutError:
        return f"no media.offer_url for a started call within {timeout:.0f} s"
    finally:
        await side.end(call)
    return None
