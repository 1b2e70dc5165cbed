"""What every support edit shares: one transaction holding the edit and its audit record, then
the record's publication (admin/audit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse

from admin.audit import append_audit
from admin.state import admin_state
from db.tables import users
from schemas.audit import Action
from web.errors import Problem


@asynccontextmanager
async def edit_transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    """The edit's transaction; once it committed, its audit record is published (a Problem
    raised inside rolls everything back: a refused edit changes nothing and records nothing)."""
    state = admin_state(request)
    async with state.engine.begin() as conn:
        yield conn
    await state.relay.publish_now()


async def record_edit(
    request: Request,
    conn: AsyncConnection,
    action: Action,
    target: Mapping[str, str],
    reason: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append the edit's audit record, by the operator of this request, in its transaction."""
    return await append_audit(
        conn,
        operator_id=request.state.operator_id,
        action=action,
        target=target,
        reason=reason,
        details=details,
    )


async def locked_account(conn: AsyncConnection, user_id: str, *, erased_ok: bool = False) -> Any:
    """The account's row, locked until the edit commits: 404 if there is none, 409 if it was
    erased (unless `erased_ok`)."""
    account = (
        await conn.execute(sa.select(users).where(users.c.user_id == user_id).with_for_update())
    ).first()
    if account is None:
        raise Problem(404, "unknown_account", "no such account")
    if account.erased_at is not None and not erased_ok:
        raise Problem(409, "account_erased", "this account was erased")
    return account


def edited(record: Mapping[str, Any], **extra: Any) -> JSONResponse:
    """An edit's answer: what it made, and its audit record."""
    return JSONResponse({**extra, "audit": dict(record)})
