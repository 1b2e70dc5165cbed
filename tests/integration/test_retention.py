"""Outcomes and Idempotency-Keys past their lifetime are deleted, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.idempotency import KEY_LIFETIME
from commands.retention import OUTCOME_LIFETIME, Pruner, prune
from db.engines import make_async_engine

MINUTE = timedelta(minutes=1)


async def add_outcome(engine: AsyncEngine, decided_at: datetime) -> str:
    command_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO command_outcomes (command_id, team_id, actor, status, position,"
                " events, decided_at) VALUES (:id, :team, 'u', 'accepted', '1', '[]', :at)"
            ),
            {"id": command_id, "team": str(uuid.uuid4()), "at": decided_at},
        )
    return command_id


async def add_key(engine: AsyncEngine, created_at: datetime) -> str:
    key = f"key-{uuid.uuid4()}"
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, command_id, created_at)"
                " VALUES (:user, :key, 'h', :command, :at)"
            ),
            {"user": str(uuid.uuid4()), "key": key, "command": str(uuid.uuid4()), "at": created_at},
        )
    return key


async def kept(engine: AsyncEngine, outcomes: list[str], keys: list[str]) -> tuple[set[str], ...]:
    async with engine.connect() as conn:
        found_outcomes = await conn.execute(
            text(
                "SELECT command_id::text FROM command_outcomes"
                " WHERE command_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": outcomes},
        )
        found_keys = await conn.execute(
            text("SELECT key FROM idempotency_keys WHERE key = ANY(:keys)"), {"keys": keys}
        )
        return set(found_outcomes.scalars()), set(found_keys.scalars())


async def test_rows_past_their_lifetime_are_deleted_chunk_by_chunk_and_the_rest_kept(
    migrated_database_url: str,
) -> None:
    engine = make_async_engine(migrated_database_url)
    now = datetime.now(UTC)
    try:
        old_outcomes = [
            await add_outcome(engine, now - OUTCOME_LIFETIME - MINUTE) for _ in range(5)
        ]
        # An outcome as old as its key's lifetime stays: a retry with the key may look it up.
        young_outcomes = [
            await add_outcome(engine, now - KEY_LIFETIME - MINUTE),
            await add_outcome(engine, now),
        ]
        old_keys = [await add_key(engine, now - KEY_LIFETIME - MINUTE) for _ in range(3)]
        young_keys = [await add_key(engine, now - KEY_LIFETIME + MINUTE)]

        deleted = await prune(engine, chunk=2, pause=0)
        outcomes, keys = await kept(engine, old_outcomes + young_outcomes, old_keys + young_keys)
    finally:
        await engine.dispose()

    assert outcomes == set(young_outcomes)
    assert keys == set(young_keys)
    # (Other tests of this database may have left rows of their own, none this old.)
    assert deleted == {"command_outcomes": 5, "idempotency_keys": 3}


async def test_the_pruner_runs_in_the_background_and_counts_what_it_deleted(
    migrated_database_url: str,
) -> None:
    engine = make_async_engine(migrated_database_url)
    registry = CollectorRegistry()
    pruner = Pruner(engine, registry, every=0.05)
    try:
        old = await add_outcome(engine, datetime.now(UTC) - OUTCOME_LIFETIME - MINUTE)
        pruner.start()
        async with asyncio.timeout(30):
            while not registry.get_sample_value(
                "chorus_rows_pruned_total", {"table": "command_outcomes"}
            ):
                await asyncio.sleep(0.05)  # waiting for the first round, not timing it
        outcomes, _ = await kept(engine, [old], [])
    finally:
        await pruner.close()
        await engine.dispose()

    assert outcomes == set()
