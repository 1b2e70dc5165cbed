"""Operators' sign-in: e-mail, password and a current TOTP code give an operator token.

The password `chorus admin add-operator` printed works once: that sign-in must carry a
`new_password`, which replaces it. Any later sign-in may carry one too (a password change).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from admin.bodies import OperatorCredentials
from admin.operators import totp_step
from admin.state import admin_state
from auth.passwords import HASHER
from auth.throttle import SigninThrottle
from auth.tokens import OPERATOR_SCOPE, encode_token, new_identity
from db.tables import operator_signin_failures, operators
from web.bodies import decode_body
from web.errors import Problem

# Operators' attempts are counted as users' are (auth/throttle.py), in a table of their own:
# a wrong TOTP code counts as a failure, so codes cannot be guessed faster than passwords.
THROTTLE = SigninThrottle(operator_signin_failures)
#: Operators hold powerful tokens: they last an hour, not a working day.
OPERATOR_TOKEN_TTL_SECONDS = 3600


async def create_session(request: Request) -> Response:
    body = await decode_body(request, OperatorCredentials)
    email = body.email.lower()
    source = request.client.host if request.client else "unknown"
    state = admin_state(request)
    engine = state.engine
    async with engine.connect() as conn:
        found = (
            await conn.execute(
                sa.select(
                    operators.c.operator_id,
                    operators.c.password_hash,
                    operators.c.totp_secret,
                    operators.c.password_one_time,
                ).where(operators.c.email == email)
            )
        ).first()
    stored_hash = found.password_hash if found else None
    if not await THROTTLE.check_password(engine, email, source, stored_hash, body.password):
        raise _refused()
    assert found is not None  # the password matched a stored hash
    if found.password_one_time and body.new_password is None:
        # Said before the code is taken, so the same code can sign in with a new password.
        raise Problem(
            403,
            "password_change_required",
            "the printed password works once: sign in again with a new_password",
        )
    step = totp_step(found.totp_secret, body.code)
    if step is None or not await _use_step(engine, found.operator_id, step):
        raise _refused()
    await THROTTLE.forget(engine, email, source)
    if body.new_password is not None:
        await _set_password(engine, found.operator_id, body.new_password)
    identity = new_identity(found.operator_id, OPERATOR_TOKEN_TTL_SECONDS, scope=OPERATOR_SCOPE)
    expires_at = datetime.fromtimestamp(identity.expires_at, UTC)
    return JSONResponse(
        {
            "token": encode_token(state.settings.require_secret(), identity),
            "operator_id": found.operator_id,
            "expires_at": expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
        status_code=201,
    )


async def _use_step(engine: AsyncEngine, operator_id: str, step: int) -> bool:
    """Take the code of `step` for this sign-in; False if it (or a later one) was used already."""
    async with engine.begin() as conn:
        taken = await conn.execute(
            sa.update(operators)
            .where(
                operators.c.operator_id == operator_id,
                sa.or_(operators.c.last_totp_step.is_(None), operators.c.last_totp_step < step),
            )
            .values(last_totp_step=step)
            .returning(operators.c.operator_id)
        )
        return taken.first() is not None


async def _set_password(engine: AsyncEngine, operator_id: str, password: str) -> None:
    hashed = await asyncio.to_thread(HASHER.hash, password)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(operators)
            .where(operators.c.operator_id == operator_id)
            .values(password_hash=hashed, password_one_time=False)
        )


def _refused() -> Problem:
    # One answer for every wrong part, so that a guess learns nothing about the others.
    return Problem(401, "bad_credentials", "the e-mail, the password or the code is wrong")


routes = [Route("/v1/admin/sessions", create_session, methods=["POST"])]
