"""Support edits of an account: its name and e-mail, a password reset, disable and enable, and
erasure. Each requires a reason and writes one audit record (admin/audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from admin.auth import operator_route
from admin.bodies import AccountChanges, Reasoned
from admin.editing import edit_transaction, edited, locked_account, record_edit
from auth.resets import RESET_PENDING_HASH, RESET_TTL, new_reset_token, reset_token_hash
from db.tables import idempotency_keys, memberships, password_resets, signin_failures, teams, users
from schemas.clock import format_time
from web.bodies import decode_body
from web.errors import Problem
from web.paths import path_uuid

ERASED_HASH = "!erased"
ERASED_NAME = "(erased)"


async def update_account(request: Request) -> Response:
    body = await decode_body(request, AccountChanges)
    changes = {
        key: value
        for key, value in (("display_name", body.display_name), ("email", body.email))
        if value is not None
    }
    if not changes:
        raise Problem(422, "invalid_body", "give a new display_name, email, or both")
    if "email" in changes:
        changes["email"] = changes["email"].lower()
    user_id = path_uuid(request, "user_id")
    async with edit_transaction(request) as conn:
        await locked_account(conn, user_id)
        if "email" in changes:
            taken = await conn.scalar(
                sa.select(users.c.user_id).where(
                    users.c.email == changes["email"], users.c.user_id != user_id
                )
            )
            if taken is not None:
                raise Problem(409, "email_taken", "another account has this e-mail")
        await conn.execute(sa.update(users).where(users.c.user_id == user_id).values(changes))
        # The audit log names the fields changed, never their values (they are personal data).
        record = await record_edit(
            request,
            conn,
            "account.update",
            {"user_id": user_id},
            body.reason,
            {"fields": sorted(changes)},
        )
    return edited(record, user_id=user_id, **changes)


async def reset_password(request: Request) -> Response:
    body = await decode_body(request, Reasoned)
    user_id = path_uuid(request, "user_id")
    token = new_reset_token()
    expires_at = datetime.now(UTC) + RESET_TTL
    async with edit_transaction(request) as conn:
        await locked_account(conn, user_id)
        # One link at a time: a new one replaces any earlier one.
        await conn.execute(sa.delete(password_resets).where(password_resets.c.user_id == user_id))
        await conn.execute(
            sa.insert(password_resets).values(
                token_hash=reset_token_hash(token), user_id=user_id, expires_at=expires_at
            )
        )
        await conn.execute(
            sa.update(users)
            .where(users.c.user_id == user_id)
            .values(password_hash=RESET_PENDING_HASH)
        )
        record = await record_edit(
            request, conn, "account.password_reset", {"user_id": user_id}, body.reason
        )
    return edited(
        record,
        user_id=user_id,
        reset_token=token,
        reset_path="/v1/password-resets",
        expires_at=format_time(expires_at),
    )


async def disable_account(request: Request) -> Response:
    body = await decode_body(request, Reasoned)
    user_id = path_uuid(request, "user_id")
    async with edit_transaction(request) as conn:
        account = await locked_account(conn, user_id)
        if account.disabled_at is not None:
            raise Problem(409, "already_disabled", "this account is disabled already")
        await conn.execute(
            sa.update(users).where(users.c.user_id == user_id).values(disabled_at=sa.func.now())
        )
        record = await record_edit(
            request, conn, "account.disable", {"user_id": user_id}, body.reason
        )
    return edited(record, user_id=user_id, disabled=True)


async def enable_account(request: Request) -> Response:
    body = await decode_body(request, Reasoned)
    user_id = path_uuid(request, "user_id")
    async with edit_transaction(request) as conn:
        account = await locked_account(conn, user_id)
        if account.disabled_at is None:
            raise Problem(409, "not_disabled", "this account is not disabled")
        await conn.execute(
            sa.update(users).where(users.c.user_id == user_id).values(disabled_at=None)
        )
        record = await record_edit(
            request, conn, "account.enable", {"user_id": user_id}, body.reason
        )
    return edited(record, user_id=user_id, disabled=False)


async def erase_account(request: Request) -> Response:
    """Remove the account's personal data (e-mail, name, password) and its memberships; its id
    stays, since the events name it (and only it)."""
    body = await decode_body(request, Reasoned)
    user_id = path_uuid(request, "user_id")
    async with edit_transaction(request) as conn:
        account = await locked_account(conn, user_id)
        await _refuse_if_owner_of_others(conn, user_id)
        await conn.execute(
            sa.delete(signin_failures).where(signin_failures.c.email == account.email)
        )
        await conn.execute(sa.delete(password_resets).where(password_resets.c.user_id == user_id))
        await conn.execute(sa.delete(idempotency_keys).where(idempotency_keys.c.user_id == user_id))
        await conn.execute(sa.delete(memberships).where(memberships.c.user_id == user_id))
        await conn.execute(
            sa.update(users)
            .where(users.c.user_id == user_id)
            .values(
                email=f"{user_id}@erased.invalid",
                display_name=ERASED_NAME,
                password_hash=ERASED_HASH,
                disabled_at=sa.func.coalesce(users.c.disabled_at, sa.func.now()),
                erased_at=sa.func.now(),
            )
        )
        record = await record_edit(
            request, conn, "account.erase", {"user_id": user_id}, body.reason
        )
    return edited(record, user_id=user_id, erased=True)


async def _refuse_if_owner_of_others(conn: AsyncConnection, user_id: str) -> None:
    """409 while the account owns a team someone else is in: its ownership goes first."""
    others = sa.exists().where(
        memberships.c.team_id == teams.c.team_id, memberships.c.user_id != user_id
    )
    owned = (
        (
            await conn.execute(
                sa.select(teams.c.team_id)
                .where(teams.c.owner_id == user_id, others)
                .order_by(teams.c.team_id)
            )
        )
        .scalars()
        .all()
    )
    if owned:
        raise Problem(
            409,
            "owns_team",
            f"the account owns teams with other members ({', '.join(owned)}); transfer their "
            "ownership first",
        )


ACCOUNT = "/v1/admin/accounts/{user_id}"
routes = [
    operator_route(ACCOUNT, update_account, ["PATCH"]),
    operator_route(f"{ACCOUNT}/password-reset", reset_password, ["POST"]),
    operator_route(f"{ACCOUNT}/disable", disable_account, ["POST"]),
    operator_route(f"{ACCOUNT}/enable", enable_account, ["POST"]),
    operator_route(f"{ACCOUNT}/erase", erase_account, ["POST"]),
]
