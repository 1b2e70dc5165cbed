"""Accounts and sessions: sign-up with argon2id hashes, sign-in with signed expiring tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.passwords import HASHER
from auth.throttle import SigninThrottle
from auth.tokens import encode_token, new_identity
from commands.state import commands_state
from db.tables import signin_failures, users
from schemas.bodies import Credentials, NewAccount
from web.bodies import decode_body
from web.errors import Problem

# Users' sign-in attempts, counted per e-mail and source address (auth/throttle.py).
THROTTLE = SigninThrottle(signin_failures)


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
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                sa.select(users.c.user_id, users.c.password_hash, users.c.disabled_at).where(
                    users.c.email == email
                )
            )
        ).first()
    stored_hash = found.password_hash if found else None
    if not await THROTTLE.check_password(engine, email, source, stored_hash, body.password):
        raise Problem(401, "bad_credentials", "the e-mail or the password is wrong")
    assert found is not None  # the password matched a stored hash
    await THROTTLE.forget(engine, email, source)
    if found.disabled_at is not None:  # by an operator (admin/account_edits.py)
        raise Problem(403, "account_disabled", "this account is disabled")
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


routes = [
    Route("/v1/accounts", create_account, methods=["POST"]),
    Route("/v1/sessions", create_session, methods=["POST"]),
]
