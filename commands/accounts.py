"""Accounts and sessions: sign-up with argon2id hashes, sign-in with signed expiring tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.tokens import encode_token, new_identity
from commands.state import commands_state
from db.tables import signin_failures, users
from schemas.bodies import Credentials, NewAccount
from web.bodies import decode_body
from web.errors import Problem

# argon2-cffi's PasswordHasher hashes with argon2id by default.
HASHER = PasswordHasher()
# A hash to verify against when the e-mail is unknown, so both cases take the same time.
DUMMY_HASH = HASHER.hash("not a real password")

# Sign-in attempts for one e-mail from one source address (a success starts the count again):
# the first are free, then each waits longer, then 429. Per source, so that a stranger who
# knows an address cannot lock its owner out from elsewhere.
FREE_FAILURES = 3
BLOCK_AFTER_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)


async def create_account(request: Request) -> Response:
    body = await decode_body(request, NewAccount)
    password_hash = await asyncio.to_thread(HASHER.hash, body.password)
    user_id = str(uuid.uuid4())
    row = {
        "user_id": user_id,
        "email": body.email.lower(),
        "display_name": body.display_name,
        "password_hash": password_hash,
    }
    engine = commands_state(request).engine
    async with engine.begin() as conn:
        inserted = await conn.execute(
            insert(users).values(row).on_conflict_do_nothing().returning(users.c.user_id)
        )
        if inserted.first() is None:
            raise Problem(409, "email_taken", "an account with this e-mail already exists")
    return JSONResponse({"user_id": user_id}, status_code=201)


async def create_session(request: Request) -> Response:
    body = await decode_body(request, Credentials)
    email = body.email.lower()
    source = request.client.host if request.client else "unknown"
    state = commands_state(request)
    engine = state.engine
    # Counted before the password is checked, in one statement: parallel attempts each get
    # their own count, so no more than BLOCK_AFTER_FAILURES passwords are ever checked.
    async with engine.begin() as conn:
        attempts = await _count_attempt(conn, email, source)
    if attempts > BLOCK_AFTER_FAILURES:
        raise Problem(
            429,
            "too_many_attempts",
            "too many failed sign-ins for this e-mail from this address; try again in 15 minutes",
            headers={"Retry-After": str(int(FAILURE_WINDOW.total_seconds()))},
        )
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                sa.select(users.c.user_id, users.c.password_hash).where(users.c.email == email)
            )
        ).first()
    if attempts > FREE_FAILURES:
        await asyncio.sleep(min(0.25 * (attempts - FREE_FAILURES), 2.0))
    stored_hash = found.password_hash if found else DUMMY_HASH
    if not await asyncio.to_thread(_password_matches, stored_hash, body.password) or not found:
        raise Problem(401, "bad_credentials", "the e-mail or the password is wrong")
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(signin_failures).where(
                signin_failures.c.email == email, signin_failures.c.source == source
            )
        )
    settings = state.settings
    identity = new_identity(found.user_id, settings.token_ttl_seconds)
    token = encode_token(settings.require_secret(), identity)
    expires_at = datetime.fromtimestamp(identity.expires_at, UTC)
    return JSONResponse(
        {
            "token": token,
            "user_id": found.user_id,
            "expires_at": expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
        status_code=201,
    )


def _password_matches(stored_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def _count_attempt(conn: AsyncConnection, email: str, source: str) -> int:
    """This attempt's number among the recent ones for (e-mail, source), counting it."""
    now = datetime.now(UTC)
    statement = insert(signin_failures).values(
        email=email, source=source, failures=1, last_failure_at=now
    )
    statement = statement.on_conflict_do_update(
        index_elements=[signin_failures.c.email, signin_failures.c.source],
        set_={
            # An attempt after a quiet window starts the count again.
            "failures": sa.case(
                (signin_failures.c.last_failure_at < now - FAILURE_WINDOW, 1),
                else_=signin_failures.c.failures + 1,
            ),
            "last_failure_at": now,
        },
    )
    counted = await conn.execute(statement.returning(signin_failures.c.failures))
    return int(counted.scalar_one())


routes = [
    Route("/v1/accounts", create_account, methods=["POST"]),
    Route("/v1/sessions", create_session, methods=["POST"]),
]
