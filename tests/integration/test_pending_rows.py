"""Pending rows on the real PostgreSQL: one statement per batch, never over a decided outcome."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from commands.pending import _INSERT_PENDING, PendingRecorder, batch_parameters
from db.engines import make_async_engine, make_engine
from streams.outcomes import record_outcomes


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


def _pending_batch(engine: Engine, command_ids: list[str], team: str, user: str) -> None:
    rows = [
        {"command_id": c, "team_id": team, "actor": user, "position": "c0.1"} for c in command_ids
    ]
    with engine.begin() as conn:
        conn.execute(_INSERT_PENDING, batch_parameters(rows))


def _outcome_batch(engine: Engine, command_ids: list[str], team: str, user: str) -> None:
    rows: list[dict[str, Any]] = [
        {
            "command_id": c,
            "team_id": team,
            "actor": user,
            "status": "accepted",
            "reason": None,
            "position": "1",
            "command_position": "c0.1",
            "events": [],
        }
        for c in command_ids
    ]
    record_outcomes(engine, rows)


@pytest.mark.parametrize("write", [_pending_batch, _outcome_batch], ids=["pending", "outcomes"])
def test_a_batch_goes_in_in_command_id_order_so_two_batches_never_deadlock(
    migrated_database_url: str, write: Callable[[Engine, list[str], str, str], None]
) -> None:
    # The commands service's pending rows and the worker's outcomes share ids. Written in
    # their arrays' orders, two batches deadlocked (a second each, the server's
    # deadlock_timeout). Here a batch [high, low] meets a transaction holding `low`: in id
    # order it waits there before touching `high`, which anyone else can still write.
    engine = make_engine(migrated_database_url)
    team, user = str(uuid.uuid4()), str(uuid.uuid4())
    low, high = sorted((str(uuid.uuid4()) for _ in range(2)), key=uuid.UUID)
    failed: list[BaseException] = []

    def batch() -> None:
        try:
            write(engine, [high, low], team, user)
        except BaseException as exc:  # reported by the test's thread
            failed.append(exc)

    try:
        with engine.connect() as holder:
            _insert_pending(holder, low, team, user)  # not committed: `low` is held
            writer = threading.Thread(target=batch)
            writer.start()
            _wait_until_blocked(engine, failed)
            with engine.connect() as probe:
                probe.execute(text("SET lock_timeout = '2s'"))
                _insert_pending(probe, high, team, user)  # would wait if the batch held it
                probe.commit()
            holder.commit()
            writer.join(30)
        assert not writer.is_alive() and not failed, failed
    finally:
        engine.dispose()


def _insert_pending(conn: Connection, command_id: str, team: str, user: str) -> None:
    conn.execute(
        _INSERT_PENDING,
        batch_parameters(
            [{"command_id": command_id, "team_id": team, "actor": user, "position": "c0.0"}]
        ),
    )


def _wait_until_blocked(engine: Engine, failed: list[BaseException]) -> None:
    """Until another session waits for a lock (the batch, on the held row). Asked afresh each
    time: within a transaction, pg_stat_activity keeps the first answer."""
    for _ in range(300):
        assert not failed, failed
        with engine.connect() as conn:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError("the batch never waited for the held row")
