"""The heartbeat benchmark's teams: each owner signed up over HTTP, every other member seeded.

Sign-up and sign-in cost an argon2 hash each, so 10,000 accounts over HTTP take minutes, and
sign-up is not what this benchmark measures. The members besides each team's owner are inserted
straight into the stack's database (users sharing one hash, computed once: they never sign in;
their memberships), and each gets a token minted with the stack's secret, as a sign-in would.
The owner's token opens the team's live stream, on which `listen` notes every frame.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, TypeVar

import aiohttp
import orjson
import sqlalchemy as sa

from auth.passwords import HASHER
from auth.tokens import encode_token, new_identity
from bench.harness import console, sign_up
from bench.heartbeat_load import Device
from db.engines import make_engine
from db.tables import memberships, users

#: Seeded members' tokens outlive any run.
TOKEN_TTL_SECONDS = 6 * 3600
#: While the first-heard wave settles, how far it got is said this often.
PROGRESS_SECONDS = 15.0

T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    teams: int
    members: int  # per team, its owner included
    devices: int  # per member

    @property
    def total(self) -> int:
        return self.teams * self.members * self.devices


def layout(devices: int, teams: int, members: int | None) -> Layout:
    """Teams x members x devices for about `devices` in all: by default one device per member;
    with `members` given, the devices are shared out among them (at least one each)."""
    per_team = max(1, members if members is not None else devices // teams)
    return Layout(teams, per_team, max(1, devices // (teams * per_team)))


@dataclass
class Member:
    user_id: str
    token: str
    devices: list[str]


@dataclass
class Team:
    token: str  # the owner's: it opens the live stream and reads presence
    user_id: str  # the owner's
    team_id: str
    members: list[Member]  # the owner first
    silenced: tuple[str, str]  # (user id, device id) of the device that stops halfway
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # after the snapshot
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    reconnects: int = 0  # live streams refused or cut, opened again
    live: dict[str, int] = field(default_factory=dict)  # member -> devices online, on the stream

    @property
    def device_count(self) -> int:
        return sum(len(m.devices) for m in self.members)


def online_devices(members: list[dict[str, Any]]) -> int:
    """How many devices of these members (contract JSON) are shown online."""
    return sum(1 for m in members for d in m.get("devices", []) if d["status"] != "offline")


def interleave(groups: list[list[T]]) -> list[T]:
    """One of each group in turn (so that each team's heartbeats spread over the interval)."""
    return [each for row in zip_longest(*groups) for each in row if each is not None]


def devices_of(teams: list[Team]) -> list[Device]:
    """Every device, with its member's token, the teams taking turns."""
    return interleave(
        [
            [
                Device(t.team_id, m.user_id, m.token, d, silenced=(m.user_id, d) == t.silenced)
                for m in t.members
                for d in m.devices
            ]
            for t in teams
        ]
    )


def build_teams(commands: str, database_url: str, secret: str, shape: Layout) -> list[Team]:
    """The teams of the run: owners over HTTP, the other members seeded; the last member's first
    device is each team's silenced one."""
    owners = [sign_up(commands) for _ in range(shape.teams)]
    seeded = seed_members(database_url, secret, [team for _, _, team in owners], shape.members - 1)
    devices = [f"d{i}" for i in range(shape.devices)]
    teams = []
    for (token, user_id, team_id), others in zip(owners, seeded, strict=True):
        members = [Member(user_id, token, devices)]
        members += [Member(member, member_token, devices) for member, member_token in others]
        silenced = (members[-1].user_id, devices[0])
        teams.append(Team(token, user_id, team_id, members, silenced))
    return teams


def seed_members(
    database_url: str, secret: str, team_ids: list[str], count: int
) -> list[list[tuple[str, str]]]:
    """`count` new members in each team, inserted as sign-up and the owner would; for each team,
    its members' (user id, token)."""
    password_hash = HASHER.hash(secrets.token_urlsafe(16))  # once: they never sign in
    seeded = [[str(uuid.uuid4()) for _ in range(count)] for _ in team_ids]
    user_rows = [
        {
            "user_id": user_id,
            "email": f"bench-{user_id}@example.com",
            "display_name": "Bench member",
            "password_hash": password_hash,
        }
        for team in seeded
        for user_id in team
    ]
    membership_rows = [
        {"team_id": team_id, "user_id": user_id, "role": "member"}
        for team_id, team in zip(team_ids, seeded, strict=True)
        for user_id in team
    ]
    if user_rows:
        engine = make_engine(database_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.insert(users), user_rows)
                conn.execute(sa.insert(memberships), membership_rows)
        finally:
            engine.dispose()
    return [
        [(user_id, encode_token(secret, new_identity(user_id, TOKEN_TTL_SECONDS))) for user_id in t]
        for t in seeded
    ]


async def listen(session: aiohttp.ClientSession, queries: str, team: Team) -> None:
    """Note each SSE frame after the snapshot, with its arrival time, and each member's devices
    online; a stream refused (503 while many open at once) or cut is opened again, resuming
    after the last frame seen."""
    headers = {"Authorization": f"Bearer {team.token}", "Accept": "text/event-stream"}
    url = f"{queries}/v1/teams/{team.team_id}/live"
    last_id = ""
    while True:
        try:
            resume = {"Last-Event-ID": last_id} if last_id else {}
            async with session.get(
                url, headers={**headers, **resume}, timeout=aiohttp.ClientTimeout()
            ) as response:
                response.raise_for_status()
                kind = ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("id: "):
                        last_id = line[4:]
                    elif line.startswith("data: "):
                        _note(team, kind, orjson.loads(line[6:]))
        except aiohttp.ClientError:
            team.reconnects += 1
        await asyncio.sleep(1.0)


def _note(team: Team, kind: str, data: dict[str, Any]) -> None:
    if kind == "snapshot":
        members = data["presence"]["members"]
        team.live.update({m["user_id"]: online_devices([m]) for m in members})
        team.ready.set()
        return
    team.frames.append((time.monotonic(), data))
    if kind == "presence":
        team.live[data["user_id"]] = online_devices([data])


async def settle(
    session: aiohttp.ClientSession, queries: str, teams: list[Team], timeout: float
) -> None:
    """Wait until every device shows online in its team's presence read model and live stream
    (the first-heard wave has been projected and sent); raise if that takes over `timeout`."""
    deadline = time.monotonic() + timeout
    pending = {team.team_id: team for team in teams}
    in_model: dict[str, int] = {}
    expected = sum(t.device_count for t in teams)
    next_word = time.monotonic() + PROGRESS_SECONDS
    while True:
        for team in list(pending.values()):
            in_model[team.team_id] = await _online_in_model(session, queries, team)
            streamed = sum(team.live.values())
            if min(in_model[team.team_id], streamed) >= team.device_count:
                del pending[team.team_id]
        if not pending:
            return
        streamed = sum(sum(t.live.values()) for t in teams)
        online = (
            f"{sum(in_model.values())}/{expected} devices online in the presence read model, "
            f"{streamed}/{expected} on the live streams "
            f"({len(pending)}/{len(teams)} teams not there yet)"
        )
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first-heard wave did not settle in {timeout:.0f}s: {online}")
        if time.monotonic() > next_word:
            console.print(f"  {online}")
            next_word += PROGRESS_SECONDS
        await asyncio.sleep(1.0)


async def _online_in_model(session: aiohttp.ClientSession, queries: str, team: Team) -> int:
    url = f"{queries}/v1/teams/{team.team_id}/presence"
    async with session.get(url, headers={"Authorization": f"Bearer {team.token}"}) as answer:
        answer.raise_for_status()
        body = orjson.loads(await answer.read())
    return online_devices(body["members"])
