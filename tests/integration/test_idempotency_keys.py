"""Idempotency keys on the real PostgreSQL, through an autocommit engine as the service uses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from commands import idempotency
from commands.idempotency import Claim
from db.engines import make_async_engine


@pytest.fixture
async def autocommit(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(migrated_database_url)
    yield engine.execution_options(isolation_level="AUTOCOMMIT")
    await engine.dispose()


async def test_a_live_key_gives_its_first_command_and_answer(autocommit: AsyncEngine) -> None:
    user, first, second = (str(uuid.uuid4()) for _ in range(3))

    owned = await idempotency.claim(autocommit, user, "k", "fp", first)
    await idempotency.remember_answer(autocommit, user, "k", {"command_id": first})
    repeat = await idempotency.claim(autocommit, user, "k", "fp", second)

    assert owned == Claim(command_id=first, answer=None, owner=True)
    assert repeat == Claim(command_id=first, answer={"command_id": first}, owner=False)


async def test_a_key_past_its_lifetime_is_taken_as_new(autocommit: AsyncEngine) -> None:
    user, old, new = (str(uuid.uuid4()) for _ in range(3))
    await idempotency.claim(autocommit, user, "k", "old request", old)
    await idempotency.remember_answer(autocommit, user, "k", {"command_id": old})
    async with autocommit.begin() as conn:
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET created_at = now() - interval '25 hours'"
                " WHERE user_id = :user"
            ),
            {"user": user},
        )

    taken = await idempotency.claim(autocommit, user, "k", "another request", new)

    assert taken == Claim(command_id=new, answer=None, owner=True)
    async with autocommit.connect() as conn:
        stored = (
            await conn.execute(
                text(
                    "SELECT command_id::text, request_hash, response,"
                    " response IS NULL AS unanswered,"
                    " created_at > now() - interval '1 hour' AS fresh"
                    " FROM idempotency_keys WHERE user_id = :user"
                ),
                {"user": user},
            )
        ).one()
    assert tuple(stored) == (new, "another request", None, True, True)
