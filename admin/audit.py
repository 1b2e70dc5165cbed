"""The audit log of operators' support edits: written with each edit, published in order.

How the chain stays single-writer and consistent with the edit: each edit's handler writes its
audit record into the `audit_log` table in the same transaction as the edit itself, so a record
exists exactly when its edit was committed (a refused or failed edit rolls both back). The
record's `seq` and `prev_hash` are read from the table's last row under a transaction-scoped
advisory lock (`CHAIN_LOCK`): any number of admin processes append one at a time, in commit
order, so the chain never forks. The table is an outbox: `AuditRelay` publishes its rows, oldest
first, to the audit topic (one key, so one partition keeps the order), and marks them published
only once Kafka acknowledged them. A second advisory lock (`RELAY_LOCK`) lets one relay at a
time publish; a relay that stops between Kafka's acknowledgement and the mark publishes the same
rows again, as identical copies, which the chain check accepts (schemas/audit.py).

A record that revokes tokens (disable, password reset, erase) is published with its revocation
(auth/revocations.py), whose not-before time is when the relay publishes it plus
`REVOCATION_MARGIN_SECONDS`: after the edit was committed, so that neither a sign-in whose
password check was under way then nor a signing host whose clock runs a little ahead gives a
token that outlives the edit. (A relay that publishes a batch again after a crash revokes again,
a little later; a user re-enabled in between signs in once more.)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.producer import AsyncProducer
from db.tables import audit_log
from schemas.audit import AUDIT_KEY, Action, new_audit_record
from schemas.clock import format_time
from schemas.envelope import GENESIS_HASH
from schemas.topics import Topics

log = logging.getLogger(__name__)

# pg_advisory_xact_lock keys ("chorus audit chain", "chorus audit relay" in spirit).
CHAIN_LOCK = 0x63686F7275_0001
RELAY_LOCK = 0x63686F7275_0002
#: The edits after which a user's earlier tokens are refused everywhere.
REVOKING: frozenset[Action] = frozenset(
    {"account.disable", "account.password_reset", "account.erase"}
)
#: How far past its publication a revocation reaches (see the module's docstring).
REVOCATION_MARGIN_SECONDS = 2.0
#: Rows published in one pass; a relay publishes again until none is left.
RELAY_BATCH = 200
#: How often the relay looks for rows an earlier pass could not publish.
RELAY_PERIOD_SECONDS = 1.0


async def append_audit(
    conn: AsyncConnection,
    *,
    operator_id: str,
    action: Action,
    target: Mapping[str, str],
    reason: str,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one sealed record to the chain inside the edit's transaction `conn`; returns it."""
    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
    last = (
        await conn.execute(
            sa.select(audit_log.c.seq, audit_log.c.record["hash"].astext.label("hash"))
            .order_by(audit_log.c.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev_hash = (1, GENESIS_HASH) if last is None else (last.seq + 1, last.hash)
    record = new_audit_record(
        audit_id=str(uuid.uuid4()),
        seq=seq,
        prev_hash=prev_hash,
        occurred_at=format_time(datetime.now(UTC)),
        operator_id=operator_id,
        action=action,
        target=target,
        reason=reason,
        details=details or {},
    )
    await conn.execute(sa.insert(audit_log).values(seq=seq, record=record))
    return record


class AuditRelay:
    """Publishes the outbox's records (and their revocations) to Kafka, oldest first."""

    def __init__(self, engine: AsyncEngine, bootstrap: str, topics: Topics) -> None:
        self._engine = engine
        self._topics = topics
        self._producer = AsyncProducer(bootstrap, "audit-relay")
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Publish in the background from now on (what an earlier run left too)."""
        self._task = asyncio.create_task(self._run(), name="audit-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self._producer.close)

    async def publish_now(self) -> bool:
        """Publish what is pending; False (logged) if Kafka did not take it: the background
        loop tries again."""
        try:
            while await self._publish_batch() == RELAY_BATCH:
                pass
        except Exception:
            log.exception("audit relay: publishing failed; retrying in the background")
            return False
        return True

    async def _run(self) -> None:
        while True:
            await self.publish_now()
            await asyncio.sleep(RELAY_PERIOD_SECONDS)

    async def _publish_batch(self) -> int:
        async with self._lock, self._engine.begin() as conn:
            locked = await conn.scalar(sa.select(sa.func.pg_try_advisory_xact_lock(RELAY_LOCK)))
            if not locked:
                return 0  # another relay is publishing these rows
            rows = (
                await conn.execute(
                    sa.select(audit_log.c.seq, audit_log.c.record)
                    .where(audit_log.c.published_at.is_(None))
                    .order_by(audit_log.c.seq)
                    .limit(RELAY_BATCH)
                )
            ).all()
            if not rows:
                return 0
            await self._send([row.record for row in rows])
            await conn.execute(
                sa.update(audit_log)
                .where(audit_log.c.seq.in_([row.seq for row in rows]))
                .values(published_at=sa.func.now())
            )
            return len(rows)

    async def _send(self, records: Sequence[dict[str, Any]]) -> None:
        """Send the records in order and wait until Kafka acknowledged every one (or raise)."""
        sent = []
        for record in records:
            sent.append(self._producer.send(self._topics.audit, AUDIT_KEY, orjson.dumps(record)))
            if record["action"] in REVOKING:
                user_id = record["target"]["user_id"]
                not_before = datetime.now(UTC) + timedelta(seconds=REVOCATION_MARGIN_SECONDS)
                revocation = {"user_id": user_id, "not_before": format_time(not_before)}
                sent.append(
                    self._producer.send(
                        self._topics.revocations, user_id.encode(), orjson.dumps(revocation)
                    )
                )
            elif record["action"] == "team.member_remove":
                # Not a revocation of tokens: the services forget the cached membership.
                target = record["target"]
                ended = {
                    "user_id": target["user_id"],
                    "team_id": target["team_id"],
                    "not_before": format_time(datetime.now(UTC)),
                }
                key = f"{target['user_id']}/{target['team_id']}".encode()
                sent.append(self._producer.send(self._topics.revocations, key, orjson.dumps(ended)))
        await asyncio.gather(*sent)
