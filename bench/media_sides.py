"""Where Chorus's offer URLs and tokens come from: the real stack, through its public API.

The measurements only need, per call, an offer URL and a token per participant, plus the
moments a real client lives through (the click that starts a call, the join).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field

import aiohttp
import httpx

from bench.harness import BenchStack

PASSWORD = "benchmark password"


@dataclass
class Call:
    call_id: str
    starter: int
    offer_url: asyncio.Future[str]


@dataclass
class StackSide:
    """The real stack: accounts in one team, calls started and joined over the public API, offer
    URLs read from the queries service's live stream (`media.offer_url` of each call)."""

    commands: str
    queries: str
    server_pid: int  # `chorus media`: its process tree (the workers) is measured
    workers: int
    mode: str = ""
    tokens: list[str] = field(default_factory=list)
    user_ids: list[str] = field(default_factory=list)
    team_id: str = ""
    _waiting: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    _known: dict[str, str] = field(default_factory=dict)
    _live: asyncio.Task[None] | None = None
    _http: httpx.AsyncClient | None = None

    @classmethod
    def start(cls, stack: BenchStack, workers: int | None) -> StackSide:
        """The services, with `chorus media` as a user runs it (`workers`: None for its
        default, one process per core)."""
        stack.start("worker")
        commands = stack.start("commands")
        queries = stack.start("queries")
        count = workers or os.cpu_count() or 1
        stack.start("media", env={"CHORUS_MEDIA_WORKERS": str(count)})
        process = stack.children[-1].process
        assert process is not None
        mode = (
            f"real stack: commands, worker, queries, `chorus media` with {count} worker "
            "process(es); Kafka, PostgreSQL"
        )
        return cls(commands, queries, process.pid, count, mode)

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
