"""Pending rows on the real PostgreSQL: one statement per batch, never over a decided outcome."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from commands.pending import PendingRecorder
from db.engines import make_async_engine


async def test_a_batch_writes_pending_rows_and_leaves_decided_ones_alone(
    migrated_database_url: str,
) -> None:
    engine = make_async_engine(migrated_database_url)
    team, user = str(uuid.uuid4()), str(uuid.uuid4())
    decided, first, second = (str(uuid.uuid4()) for _ in range(3))
    try:
        async with engine.begin() as conn:  # the worker was faster than the recorder
            await conn.execute(
                text(
                    "INSERT INTO command_outcomes"
                    " (command_id, team_id, actor, status, position, command_position, events)"
                    " VALUES (:id, :team, :user, 'accepted', 'e0.9', 'c0.1', '[1]'::jsonb)"
                ),
                {"id": decided, "team": team, "user": user},
            )
        recorder = PendingRecorder(engine)
        for n, command_id in enumerate((decided, first, second), start=1):
            recorder.record(command_id, team, user, f"c0.{n}")
        await recorder.close()  # never started: one batch, written on close

        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT command_id::text AS id, team_id::text AS team, actor, status,"
                        " position, command_position, events FROM command_outcomes"
                        " WHERE command_id = ANY(CAST(:ids AS uuid[])) ORDER BY command_position"
                    ),
                    {"ids": [decided, first, second]},
                )
            ).all()
    finally:
        await engine.dispose()

    assert [tuple(row) for row in rows] == [
        (decided, team, user, "accepted", "e0.9", "c0.1", [1]),
        (first, team, user, "pending", "c0.2", "c0.2", []),
        (second, team, user, "pending", "c0.3", "c0.3", []),
    ]
