"""Command outcomes and Idempotency-Keys are deleted once past their lifetime.

Both tables gain a row per command (at 1,000 heartbeats/s, 86 million outcome rows a day) and
nothing else removes them. A key lives 24 h (`KEY_LIFETIME`: past it, it is free again anyway).
An outcome is kept an hour longer: a retry after an unknown outcome, within its key's lifetime,
looks the command's outcome up to learn whether it was appended (commands/client_commands.py).
Past that, `GET /v1/commands/{id}` answers 404 and a `?after=` naming the command's position
is not known any more.

Each copy of the commands service prunes every `every` seconds, `chunk` rows per statement
(short transactions, no long lock on the hot tables), found through BRIN indexes on the rows'
age (revision 0009). Two copies pruning at once only delete fewer rows each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from commands.idempotency import KEY_LIFETIME
from db.tables import command_outcomes, idempotency_keys

log = logging.getLogger(__name__)

OUTCOME_LIFETIME = KEY_LIFETIME + timedelta(hours=1)
PRUNE_EVERY_SECONDS = 600.0
PRUNE_CHUNK = 5000
# A pause between two chunks, so that a large backlog does not keep the database busy.
CHUNK_PAUSE_SECONDS = 0.05


def _delete_older(table: sa.Table, column: sa.Column[datetime]) -> sa.Delete:
    """Delete up to :chunk rows of `table` older than :cutoff (by their place on disk)."""
    oldest: sa.Select[tuple[str]] = (
        sa.select(sa.column("ctid")).select_from(table).where(column < sa.bindparam("cutoff"))
    )
    chosen = sa.func.array(oldest.limit(sa.bindparam("chunk")).scalar_subquery())
    return sa.delete(table).where(sa.column("ctid") == sa.func.any(chosen))


# Table -> (the statement deleting a chunk of its old rows, how long its rows are kept).
_PRUNED = {
    "command_outcomes": (
        _delete_older(command_outcomes, command_outcomes.c.decided_at),
        OUTCOME_LIFETIME,
    ),
    "idempotency_keys": (
        _delete_older(idempotency_keys, idempotency_keys.c.created_at),
        KEY_LIFETIME,
    ),
}


async def prune(
    engine: AsyncEngine, *, chunk: int = PRUNE_CHUNK, pause: float = CHUNK_PAUSE_SECONDS
) -> dict[str, int]:
    """Delete every row past its lifetime, a chunk per transaction; rows deleted, by table."""
    deleted: dict[str, int] = {}
    now = datetime.now(UTC)
    for name, (statement, lifetime) in _PRUNED.items():
        cutoff = now - lifetime
        deleted[name] = 0
        while True:
            async with engine.begin() as conn:
                result = await conn.execute(statement, {"cutoff": cutoff, "chunk": chunk})
            deleted[name] += result.rowcount
            if result.rowcount < chunk:
                break
            await asyncio.sleep(pause)
    return deleted


class Pruner:
    """Runs `prune` every `every` seconds in the background while the service runs."""

    def __init__(
        self,
        engine: AsyncEngine,
        registry: CollectorRegistry,
        *,
        every: float = PRUNE_EVERY_SECONDS,
    ) -> None:
        self._engine = engine
        self._every = every
        self._deleted = Counter(
            "chorus_rows_pruned",
            "Rows deleted past their lifetime (command outcomes, Idempotency-Keys)",
            ["table"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="retention-pruner")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                deleted = await prune(self._engine)
            except Exception as exc:  # the database is down: the next round deletes them
                log.warning("pruning old outcomes and keys failed: %s", exc)
                continue
            for table, count in deleted.items():
                self._deleted.labels(table).inc(count)
            if any(deleted.values()):
                log.info(
                    "pruned %d command outcomes and %d Idempotency-Keys past their lifetime",
                    deleted["command_outcomes"],
                    deleted["idempotency_keys"],
                )
