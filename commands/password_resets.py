"""`POST /v1/password-resets`: a user sets a new password with the one-time token an operator's
reset gave them (admin/account_edits.py). The token works once, until it expires."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.passwords import HASHER
from auth.resets import reset_token_hash
from commands.state import commands_state
from db.tables import password_resets, users
from schemas.bodies import PasswordReset
from web.bodies import decode_body
from web.errors import Problem


async def finish_reset(request: Request) -> Response:
    body = await decode_body(request, PasswordReset)
    password_hash = await asyncio.to_thread(HASHER.hash, body.password)
    async with commands_state(request).engine.begin() as conn:
        # Taken in one statement: of two uses of one token, one finds it.
        used = (
            await conn.execute(
                sa.delete(password_resets)
                .where(
                    password_resets.c.token_hash == reset_token_hash(body.token),
                    password_resets.c.expires_at > sa.func.now(),
                )
                .returning(password_resets.c.user_id)
            )
        ).first()
        if used is None:
            raise Problem(
                404, "unknown_reset_token", "this reset token is unknown, used or expired"
            )
        await conn.execute(
            sa.update(users)
            .where(users.c.user_id == used.user_id, users.c.erased_at.is_(None))
            .values(password_hash=password_hash)
        )
    return JSONResponse({"user_id": used.user_id})


routes = [Route("/v1/password-resets", finish_reset, methods=["POST"])]
