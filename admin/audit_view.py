"""`GET /v1/admin/audit`: the audit log, newest first, each record with its chain status.

Read from the outbox table (admin/audit.py), which holds every record the moment its edit
committed; `published` says whether the audit topic has it yet. `chorus replay verify` checks
the topic's copy.
"""

from __future__ import annotations

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin.auth import operator_route
from admin.state import admin_state
from db.snapshots import snapshot
from db.tables import audit_log
from schemas.audit import link_status
from schemas.envelope import GENESIS_HASH
from web.errors import Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


async def list_audit(request: Request) -> Response:
    limit = _int_query(request, "limit", MAX_LIMIT) or DEFAULT_LIMIT
    before = _int_query(request, "before", None)
    query = sa.select(audit_log.c.seq, audit_log.c.record, audit_log.c.published_at)
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    # One more than shown: the oldest record shown is checked against the one before it.
    query = query.order_by(audit_log.c.seq.desc()).limit(limit + 1)
    async with snapshot(admin_state(request).engine) as conn:
        rows = (await conn.execute(query)).all()
    records = []
    for index, row in enumerate(rows[:limit]):
        older = rows[index + 1] if index + 1 < len(rows) else None
        previous = (
            older.record.get("hash") if older is not None and older.seq == row.seq - 1 else None
        )
        if row.seq == 1:
            previous = GENESIS_HASH
        chain = link_status(row.record, previous)
        records.append({**row.record, "chain": chain, "published": row.published_at is not None})
    more = len(rows) > limit
    return JSONResponse({"records": records, "next_before": records[-1]["seq"] if more else None})


def _int_query(request: Request, name: str, most: int | None) -> int | None:
    """A positive whole number given as `?name=` (at most `most`), or None when not given."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (most is not None and value > most):
        bound = f" up to {most}" if most is not None else ""
        raise Problem(422, "invalid_query", f"{name} must be a whole number from 1{bound}")
    return value


routes = [operator_route("/v1/admin/audit", list_audit, ["GET"])]
