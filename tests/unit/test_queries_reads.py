"""Read-model endpoints in-process: rows mapped to the contract's JSON, members only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from auth.cache import VerifiedTokens, membership_cache
from auth.revocations import Revocations
from auth.tokens import encode_token, new_identity
from config.settings import Settings
from queries import reads
from queries.callers import LiveCallers
from queries.hub import ChangeHub
from queries.state import QueriesState
from tests.asgi import started
from tests.fakedb import ScriptedEngine, row
from web.service import build_service

SECRET = "the-service-secret-of-at-least-32-bytes"
USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"
TEAM = "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d"
CALL = "7d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
ALICE = {"user_id": "a", "devices": [{"device_id": "d", "status": "available"}]}
BOB = {"user_id": "b", "devices": []}
CALL_BODY = {"call_id": CALL, "state": "active", "participants": []}


def _app(tmp_path: Path, engine: ScriptedEngine, member: bool = True) -> Starlette:
    @asynccontextmanager
    async def open_state(
        settings: Settings, registry: CollectorRegistry
    ) -> AsyncIterator[QueriesState]:
        members = membership_cache()
        if member:
            members[TEAM, USER] = "member"
        yield QueriesState(
            settings=settings,
            tokens=VerifiedTokens(lambda: SECRET),
            engine=engine.typed(),
            hub=cast(ChangeHub, None),  # no `?after=` here: tests/unit/test_queries_positions.py
            callers=LiveCallers(Revocations()),
            members=members,
        )

    settings = Settings(data_dir=tmp_path, secret=SECRET)
    return build_service("queries", settings, reads.routes, open_state, {})


async def _get(
    tmp_path: Path, engine: ScriptedEngine, path: str, member: bool = True
) -> httpx.Response:
    token = encode_token(SECRET, new_identity(USER, 3600))
    async with started(_app(tmp_path, engine, member)) as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})


async def test_presence_is_the_members_rows_at_one_position(tmp_path: Path) -> None:
    engine = ScriptedEngine([row(seq=12)], [row(body=ALICE), row(body=BOB)])

    answer = await _get(tmp_path, engine, f"/v1/teams/{TEAM}/presence")

    assert answer.status_code == 200
    assert answer.json() == {"position": "12", "members": [ALICE, BOB]}
    assert engine.options == {"isolation_level": "REPEATABLE READ"}
    members_query = str(engine.executed[1][0])
    assert "ORDER BY rm_members.user_id" in members_query


async def test_a_team_nothing_happened_in_is_at_position_0(tmp_path: Path) -> None:
    engine = ScriptedEngine([], [])

    answer = await _get(tmp_path, engine, f"/v1/teams/{TEAM}/calls")

    assert answer.json() == {"position": "0", "calls": []}


async def test_calls_can_be_filtered_by_state(tmp_path: Path) -> None:
    everything, active = ScriptedEngine([row(seq=3)], [row(body=CALL_BODY)]), ScriptedEngine()

    answer = await _get(tmp_path, everything, f"/v1/teams/{TEAM}/calls")
    await _get(tmp_path, active, f"/v1/teams/{TEAM}/calls?state=active")

    assert answer.json() == {"position": "3", "calls": [CALL_BODY]}
    assert "active" not in everything.executed[1][0].compile().params.values()
    assert "active" in active.executed[1][0].compile().params.values()


async def test_an_unknown_call_state_is_refused(tmp_path: Path) -> None:
    engine = ScriptedEngine()

    answer = await _get(tmp_path, engine, f"/v1/teams/{TEAM}/calls?state=ringing")

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_query")
    assert engine.executed == []


async def test_a_team_is_shown_to_its_members_only(tmp_path: Path) -> None:
    engine = ScriptedEngine([row(team_id=TEAM, role=None)])  # the team exists, no membership

    answer = await _get(tmp_path, engine, f"/v1/teams/{TEAM}/presence", member=False)

    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "not_a_member")


async def test_a_call_is_its_rows_body(tmp_path: Path) -> None:
    engine = ScriptedEngine(
        [row(team_id=TEAM)], [row(team_id=TEAM, role="member")], [row(body=CALL_BODY)]
    )

    answer = await _get(tmp_path, engine, f"/v1/calls/{CALL}")

    assert (answer.status_code, answer.json()) == (200, CALL_BODY)


async def test_a_call_in_no_directory_is_unknown(tmp_path: Path) -> None:
    engine = ScriptedEngine([], [])  # neither projected nor started

    answer = await _get(tmp_path, engine, f"/v1/calls/{CALL}")

    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "unknown_call")


async def test_a_call_started_but_not_yet_projected_is_not_found_yet(tmp_path: Path) -> None:
    # Not in rm_calls, in the directory (its team known), no body to show.
    engine = ScriptedEngine([], [row(team_id=TEAM)], [row(team_id=TEAM, role="member")], [])

    answer = await _get(tmp_path, engine, f"/v1/calls/{CALL}")

    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "unknown_call")
