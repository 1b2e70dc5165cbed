"""A call with tone clients on the real stack: HTTP through the public API, audio over WebRTC."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.stack import ChorusStack, Client
from tests.tones import TIMEOUT, TONES, ToneClient, hears

SETTLE = 20.0  # seconds for the log to reach a read model or a media node on a busy machine


@dataclass
class MediaCall:
    """Three members (`ann`, `bob`, `cat`, each with its tone) in one call, plus `eve`, a member
    who is not in it."""

    stack: ChorusStack
    commands: str
    queries: str
    members: dict[str, Client]
    team_id: str
    call_id: str = ""
    tones: dict[str, ToneClient] = field(default_factory=dict)

    @classmethod
    def start(cls, stack: ChorusStack, commands: str, queries: str) -> MediaCall:
        members = {name: stack.client(commands).sign_up(name) for name in (*TONES, "eve")}
        team_id = members["ann"].new_team(*(c for name, c in members.items() if name != "ann"))
        call = cls(stack, commands, queries, members, team_id)
        invitees = [members["bob"].user_id, members["cat"].user_id]
        started = members["ann"].post(f"/v1/teams/{team_id}/calls", {"invitees": invitees})
        assert started.status_code == 202, started.text
        call.call_id = started.json()["call_id"]
        for name in ("bob", "cat"):
            assert call.command(name, "join").status_code == 202
        call.tones = {name: ToneClient(name) for name in TONES}
        return call

    def command(self, name: str, kind: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return self.members[name].post(f"/v1/calls/{self.call_id}/{kind}", body or {})

    async def read_call(self) -> dict[str, Any] | None:
        """The call's read model, or None while the projector has not seen it yet."""
        async with httpx.AsyncClient(timeout=15) as http:
            answer = await http.get(
                f"{self.queries}/v1/calls/{self.call_id}", headers=self.members["ann"].headers()
            )
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        call: dict[str, Any] = answer.json()
        return call

    async def wait_call(
        self, condition: Callable[[dict[str, Any]], bool], timeout: float = SETTLE
    ) -> dict[str, Any]:
        """The call from the read model once `condition` holds."""
        deadline = time.monotonic() + timeout
        while True:
            call = await self.read_call()
            if call is not None and condition(call):
                return call
            assert time.monotonic() < deadline, f"condition not met: {call}"
            await asyncio.sleep(0.05)

    async def offer_url(self, not_this: str | None = None, timeout: float = SETTLE) -> str:
        call = await self.wait_call(
            lambda c: c["media"] is not None and c["media"]["offer_url"] != not_this, timeout
        )
        url: str = call["media"]["offer_url"]
        return url

    async def post_offer(self, url: str, name: str, sdp: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=15) as http:
            return await http.post(
                url, json={"sdp": sdp, "type": "offer"}, headers=self.members[name].headers()
            )

    async def connect(self, url: str, name: str) -> None:
        tone = self.tones[name]
        answer = await self.post_offer(url, name, await tone.offer())
        assert answer.status_code == 200, answer.text
        assert answer.json()["type"] == "answer"
        await tone.accept(answer.json()["sdp"])

    async def hear_each_other(self, names: set[str], muted: frozenset[str] = frozenset()) -> None:
        """Each of `names` hears the others of `names` (except `muted`), and never itself.

        Someone with nobody to hear is not checked (the spectrum of silence has no ratio)."""
        heard_by = {name: names - {name} - muted for name in names}
        names = {name for name in names if heard_by[name]}
        deadline = time.monotonic() + TIMEOUT
        while True:
            powers = await asyncio.gather(*(self.tones[name].listen() for name in names))
            results = {
                name: hears(power, heard_by[name], set(TONES) - heard_by[name])
                for name, power in zip(names, powers, strict=True)
            }
            if all(results.values()):
                return
            # The first second after a (re)connect or a mute may still carry the old mix.
            assert time.monotonic() < deadline, dict(zip(names, powers, strict=True))

    async def close(self) -> None:
        await asyncio.gather(*(tone.close() for tone in self.tones.values()))
