"""`?after=c<partition>.<offset>` waits for the worker's recorded outcome (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from auth.tokens import encode_token, new_identity
from config.settings import Settings
from db.engines import CHANGES_CHANNEL, OUTCOMES_CHANNEL, make_async_engine
from queries import positions
from queries.app import create_app
from queries.state import QueriesState
from tests.asgi import started

SECRET = "a-test-secret-that-is-at-least-32-bytes"
POSITION = "c0.7"


@asynccontextmanager
async def _queries(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, QueriesState, str, dict[str, str]]]:
    """The queries service in-process, and a team with one member who may read it."""
    user_id, team_id = str(uuid.uuid4()), str(uuid.uuid4())
    engine = make_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO users (user_id, email, display_name, password_hash)"
                    " VALUES (:u, :e, 'Ann', 'x')"
                ),
                {"u": user_id, "e": f"{user_id}@example.com"},
            )
            await conn.execute(
                sa.text("INSERT INTO teams (team_id, name, owner_id) VALUES (:t, 'T', :u)"),
                {"t": team_id, "u": user_id},
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO memberships (team_id, user_id, role) VALUES (:t, :u, 'owner')"
                ),
                {"t": team_id, "u": user_id},
            )
    finally:
        await engine.dispose()
    settings = Settings(data_dir=tmp_path, database_url=database_url, secret=SECRET)
    app = create_app(settings)
    token = encode_token(SECRET, new_identity(user_id, 600))
    async with started(app) as client:
        state = app.state.service
        assert isinstance(state, QueriesState)
        yield client, state, team_id, {"Authorization": f"Bearer {token}"}


async def _execute(state: QueriesState, sql: str, **params: object) -> None:
    async with state.engine.begin() as conn:
        await conn.execute(sa.text(sql), params)


async def _record_pending(state: QueriesState, team_id: str) -> str:
    command_id = str(uuid.uuid4())
    await _execute(
        state,
        "INSERT INTO command_outcomes (command_id, team_id, actor, status, position,"
        " command_position, events) VALUES (:c, :t, 'a', 'pending', :p, :p, '[]')",
        c=command_id,
        t=team_id,
        p=POSITION,
    )
    return command_id


async def _decide_and_project(state: QueriesState, team_id: str, command_id: str) -> None:
    """What the worker does: project seq 3, record the outcome, NOTIFY both."""
    await _execute(state, "INSERT INTO rm_positions (team_id, seq) VALUES (:t, 3)", t=team_id)
    await _execute(
        state,
        "UPDATE command_outcomes SET status = 'accepted', position = '3' WHERE command_id = :c",
        c=command_id,
    )
    await _execute(state, "SELECT pg_notify(:ch, :p)", ch=CHANGES_CHANNEL, p=f"{team_id}:3")
    await _execute(state, "SELECT pg_notify(:ch, :p)", ch=OUTCOMES_CHANNEL, p=command_id)


async def _until_listening(state: QueriesState) -> None:
    """Until the hub's listener hears the outcomes channel (it connects after start-up)."""
    with state.hub.decisions.waiting(None) as woken:
        while not woken.done():
            await _execute(state, "SELECT pg_notify(:ch, 'probe')", ch=OUTCOMES_CHANNEL)
            await asyncio.wait([woken], timeout=0.1)


async def _until_waiting(state: QueriesState) -> None:
    while state.hub.decisions.waiting_count() == 0:
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("pending_first", [True, False], ids=["pending-row", "no-row-yet"])
async def test_a_read_after_a_command_answers_once_its_outcome_is_recorded(
    migrated_database_url: str, tmp_path: Path, pending_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No second look before the 10 s bound: only the outcome's notification can wake the read.
    monkeypatch.setattr(positions, "RECHECK_SECONDS", 60.0)
    async with _queries(migrated_database_url, tmp_path) as (client, state, team_id, auth):
        await asyncio.wait_for(_until_listening(state), 10)
        command_id = await _record_pending(state, team_id) if pending_first else None
        read = asyncio.create_task(
            client.get(f"/v1/teams/{team_id}/presence?after={POSITION}", headers=auth)
        )
        await asyncio.wait_for(_until_waiting(state), 10)
        assert not read.done()
        if command_id is None:  # the commands service records the pending row late
            command_id = await _record_pending(state, team_id)
        await _decide_and_project(state, team_id, command_id)
        response = await asyncio.wait_for(read, 5)
    assert response.status_code == 200, response.text
    assert response.json() == {"position": "3", "members": []}
    assert state.hub.decisions.waiting_count() == 0


async def test_a_command_never_decided_is_504_after_the_bound(
    migrated_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "AFTER_TIMEOUT_SECONDS", 0.5)
    async with _queries(migrated_database_url, tmp_path) as (client, state, team_id, auth):
        await _record_pending(state, team_id)
        response = await client.get(f"/v1/teams/{team_id}/presence?after={POSITION}", headers=auth)
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "timeout"
    assert state.hub.decisions.waiting_count() == 0
