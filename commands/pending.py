"""Records appended commands as pending, in batches off the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import JSONB, UUID, command_outcomes

log = logging.getLogger(__name__)

MAX_BATCH = 500
#: How long a batch gathers rows after its first: at 1,000 commands/s a statement each few
#: milliseconds cost the service a tenth of a core; one per window, a few hundredths.
GATHER_SECONDS = 0.02
# One statement per batch, its rows as four arrays: far less work per row, in this process and
# in the database, than an executemany.
_BATCH = (
    sa.func.unnest(
        sa.bindparam("command_ids", type_=ARRAY(UUID)),
        sa.bindparam("team_ids", type_=ARRAY(UUID)),
        sa.bindparam("actors", type_=ARRAY(sa.Text)),
        sa.bindparam("positions", type_=ARRAY(sa.Text)),
    )
    .table_valued("command_id", "team_id", "actor", "position")
    .render_derived(name="batch")
)
_INSERT_PENDING = (
    insert(command_outcomes)
    .from_select(
        ["command_id", "team_id", "actor", "status", "position", "command_position", "events"],
        sa.select(
            _BATCH.c.command_id,
            _BATCH.c.team_id,
            _BATCH.c.actor,
            sa.literal("pending", sa.Text),
            _BATCH.c.position,
            _BATCH.c.position,
            sa.cast(sa.literal("[]", sa.Text), JSONB),
        )
        # In command id order, as the worker records outcomes (streams/outcomes.py): a batch
        # sharing ids with one of the worker's waits for it instead of deadlocking.
        .order_by(_BATCH.c.command_id),
    )
    .on_conflict_do_nothing()
)


def batch_parameters(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """The parameters of `_INSERT_PENDING` for queued rows, an array per column."""
    return {
        "command_ids": [row["command_id"] for row in rows],
        "team_ids": [row["team_id"] for row in rows],
        "actors": [row["actor"] for row in rows],
        "positions": [row["position"] for row in rows],
    }


class PendingRecorder:
    """Makes appended commands known to GET /v1/commands/{id} before they are decided.

    The request does not wait for this write: the decision (written by the worker) replaces
    the pending row, and until either exists the command reads as unknown for a moment (the
    batch's gathering window, `gather` seconds, and a round trip).
    """

    def __init__(self, engine: AsyncEngine, gather: float = GATHER_SECONDS) -> None:
        self._engine = engine
        self._gather = gather
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._taken: list[dict[str, str]] = []  # off the queue, not written yet
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="pending-recorder")

    def record(self, command_id: str, team_id: str, actor: str, position: str) -> None:
        """Queue the command's pending row (its status and empty events are the statement's)."""
        self._queue.put_nowait(
            {"command_id": command_id, "team_id": team_id, "actor": actor, "position": position}
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._flush([*self._taken, *self._drain()])
        self._taken = []

    async def _run(self) -> None:
        while True:
            self._taken.append(await self._queue.get())
            await asyncio.sleep(self._gather)  # the rows recorded meanwhile go with it
            self._taken.extend(self._drain())
            await self._flush(self._taken)
            self._taken = []

    def _drain(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        while not self._queue.empty() and len(rows) < MAX_BATCH:
            rows.append(self._queue.get_nowait())
        return rows

    async def _flush(self, rows: list[dict[str, str]]) -> None:
        if not rows:
            return
        try:
            async with self._engine.begin() as conn:
                await conn.execute(_INSERT_PENDING, batch_parameters(rows))
        except Exception as exc:  # the database is down: the decisions will still be recorded
            log.warning("could not record %d pending commands: %s", len(rows), exc)
