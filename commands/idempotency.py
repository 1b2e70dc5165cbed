"""Idempotency-Key: the same key from the same user within 24 h gives the first answer, once.

The first request to insert the key owns it and fixes the command id (and so the call id).
A request that finds the key taken waits for the owner's answer; if the owner died before
answering, it appends the same command itself, which the decider decides only once.
A command whose append had an unknown outcome keeps its key and id for good: a retry sends the
same command again (deduplicated by the decider), never a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import idempotency_keys
from web.errors import Problem

MAX_KEY_LENGTH = 200
# Printable characters only: a control character (NUL above all) cannot be stored as text.
_KEY = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_KEY_LENGTH}}}")
# Stored in place of an answer while an append's outcome is unknown.
UNKNOWN_OUTCOME: dict[str, Any] = {"outcome": "unknown"}
KEY_LIFETIME = timedelta(hours=24)
OWNER_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Claim:
    """The command id to use, and the stored answer when this is a repeat."""

    command_id: str
    answer: dict[str, Any] | None
    owner: bool
    # The command may already be in the log: send it again, and never give the key back.
    resend: bool = False


def validate_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if _KEY.fullmatch(raw) is None:
        raise Problem(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters",
        )
    return raw


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + body).hexdigest()


# Built once, with bound parameters: building a statement costs more than running it.
_PROPOSED = insert(idempotency_keys).values(
    user_id=sa.bindparam("owner"),
    key=sa.bindparam("key_text"),
    request_hash=sa.bindparam("fingerprint"),
    command_id=sa.bindparam("command"),
)
# One statement: the key is new, or older than its lifetime and so free again (taken over as a
# new row would be); a live key is left alone and read by `_existing`.
_TAKE = _PROPOSED.on_conflict_do_update(
    index_elements=[idempotency_keys.c.user_id, idempotency_keys.c.key],
    set_={
        "request_hash": _PROPOSED.excluded.request_hash,
        "command_id": _PROPOSED.excluded.command_id,
        "response": sa.null(),  # SQL NULL (None would be bound as a JSON null)
        "created_at": _PROPOSED.excluded.created_at,
    },
    where=idempotency_keys.c.created_at < sa.bindparam("expired_before"),
).returning(idempotency_keys.c.command_id)
_REMEMBER = (
    sa.update(idempotency_keys)
    .where(
        idempotency_keys.c.user_id == sa.bindparam("owner"),
        idempotency_keys.c.key == sa.bindparam("key_text"),
    )
    .values(response=sa.bindparam("answer", type_=idempotency_keys.c.response.type))
)


async def claim(
    engine: AsyncEngine, user_id: str, key: str, fingerprint: str, command_id: str
) -> Claim:
    """Take the key for `command_id`, or learn the command and answer of its first use."""
    parameters = {
        "owner": user_id,
        "key_text": key,
        "fingerprint": fingerprint,
        "command": command_id,
        "expired_before": datetime.now(UTC) - KEY_LIFETIME,
    }
    async with engine.begin() as conn:
        taken = (await conn.execute(_TAKE, parameters)).first()
    if taken is not None:
        return Claim(command_id=command_id, answer=None, owner=True)
    return await _existing(engine, user_id, key, fingerprint)


async def _existing(engine: AsyncEngine, user_id: str, key: str, fingerprint: str) -> Claim:
    deadline = asyncio.get_running_loop().time() + OWNER_GRACE_SECONDS
    while True:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(idempotency_keys).where(
                        idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key
                    )
                )
            ).first()
        if row is None:  # the owner failed and gave the key back: behave as a first request
            raise KeyReleased()
        if row.request_hash != fingerprint:
            raise Problem(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        if row.response == UNKNOWN_OUTCOME:  # this retry takes over, with the same command
            return Claim(command_id=str(row.command_id), answer=None, owner=True, resend=True)
        if row.response is not None or asyncio.get_running_loop().time() >= deadline:
            return Claim(command_id=str(row.command_id), answer=row.response, owner=False)
        await asyncio.sleep(0.02)


class KeyReleased(Exception):
    """The first request with this key failed and released it."""


async def remember_answer(
    engine: AsyncEngine, user_id: str, key: str, answer: dict[str, Any]
) -> None:
    async with engine.begin() as conn:
        await conn.execute(_REMEMBER, {"owner": user_id, "key_text": key, "answer": answer})


async def remember_unknown(engine: AsyncEngine, user_id: str, key: str, command_id: str) -> None:
    """Mark the key's command as perhaps appended, so a retry re-sends it rather than waiting."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(idempotency_keys)
            .where(
                idempotency_keys.c.user_id == user_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.command_id == command_id,
                idempotency_keys.c.response.is_(None),
            )
            .values(response=UNKNOWN_OUTCOME)
        )


async def release(engine: AsyncEngine, user_id: str, key: str, command_id: str) -> None:
    """Give the key back after the command was certainly not appended, so a retry may use it
    (never after an unknown outcome: the command may be in the log)."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(idempotency_keys).where(
                idempotency_keys.c.user_id == user_id,
                idempotency_keys.c.key == key,
                idempotency_keys.c.command_id == command_id,
                idempotency_keys.c.response.is_(None),
            )
        )
