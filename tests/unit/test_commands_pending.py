"""Appended commands are recorded as pending in batches, off the request path, never raising."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from commands import pending
from commands.pending import PendingRecorder
from tests.fakedb import ScriptedEngine


def _batches(engine: ScriptedEngine) -> list[list[dict[str, Any]]]:
    """Each statement's rows, from its parameters (one array per column)."""
    batches = []
    for _, parameters in engine.executed:
        columns = [parameters[name] for name in ("command_ids", "team_ids", "actors", "positions")]
        assert len({len(column) for column in columns}) == 1
        batches.append(
            [
                {"command_id": c, "team_id": t, "actor": a, "position": p}
                for c, t, a, p in zip(*columns, strict=True)
            ]
        )
    return batches


async def _written(engine: ScriptedEngine, rows: int) -> None:
    """Return once `rows` rows were handed to the database (the recorder runs as a task)."""

    async def all_of_them() -> None:
        while sum(len(batch) for batch in _batches(engine)) < rows:
            await asyncio.sleep(0)

    await asyncio.wait_for(all_of_them(), 2.0)


async def test_a_pending_row_carries_the_command_and_its_position() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed())

    recorder.record("cmd", "team", "user", "c1.5")
    await recorder.close()

    assert _batches(engine) == [
        [{"command_id": "cmd", "team_id": "team", "actor": "user", "position": "c1.5"}]
    ]


async def test_commands_recorded_meanwhile_are_written_in_one_batch() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed())
    for n in range(3):
        recorder.record(f"cmd{n}", "team", "user", f"c0.{n}")

    recorder.start()
    await _written(engine, 3)
    await recorder.close()

    assert [[r["command_id"] for r in batch] for batch in _batches(engine)] == [
        ["cmd0", "cmd1", "cmd2"]
    ]
    assert engine.transactions == 1


async def test_rows_recorded_while_a_batch_gathers_are_written_with_it() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed(), gather=0.05)
    recorder.record("cmd0", "team", "user", "c0.0")
    recorder.start()
    await asyncio.sleep(0)  # the recorder took the first row and gathers
    assert engine.executed == []

    recorder.record("cmd1", "team", "user", "c0.1")
    recorder.record("cmd2", "team", "user", "c0.2")
    await _written(engine, 3)
    await recorder.close()

    assert [[r["command_id"] for r in batch] for batch in _batches(engine)] == [
        ["cmd0", "cmd1", "cmd2"]
    ]


async def test_closing_while_a_batch_gathers_writes_it() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed(), gather=60)
    recorder.record("cmd0", "team", "user", "c0.0")
    recorder.start()
    await asyncio.sleep(0)  # the first row is off the queue, gathering
    recorder.record("cmd1", "team", "user", "c0.1")

    await recorder.close()

    assert [[r["command_id"] for r in batch] for batch in _batches(engine)] == [["cmd0", "cmd1"]]


async def test_a_backlog_is_written_in_bounded_batches_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pending, "MAX_BATCH", 4)
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed())
    for n in range(11):
        recorder.record(f"cmd{n}", "team", "user", f"c0.{n}")

    recorder.start()
    await _written(engine, 11)
    await recorder.close()

    batches = _batches(engine)
    assert [r["command_id"] for batch in batches for r in batch] == [f"cmd{n}" for n in range(11)]
    # One waited for, then up to MAX_BATCH more already queued.
    assert max(len(batch) for batch in batches) <= 5
    assert len(batches) == 3


async def test_closing_writes_what_is_still_queued() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed())
    recorder.record("cmd", "team", "user", "c0.1")

    await recorder.close()  # never started: the queue is written all the same

    assert [r["command_id"] for batch in _batches(engine) for r in batch] == ["cmd"]


async def test_closing_with_nothing_queued_writes_nothing() -> None:
    engine = ScriptedEngine()
    recorder = PendingRecorder(engine.typed())
    recorder.start()

    await recorder.close()

    assert engine.transactions == 0


async def test_a_database_error_is_logged_and_later_commands_are_still_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = ScriptedEngine(ConnectionRefusedError("database down"))
    recorder = PendingRecorder(engine.typed())
    recorder.start()

    with caplog.at_level(logging.WARNING, logger="commands.pending"):
        recorder.record("lost", "team", "user", "c0.1")
        await _written(engine, 1)
        recorder.record("kept", "team", "user", "c0.2")
        await _written(engine, 2)
    await recorder.close()

    assert [[r["command_id"] for r in batch] for batch in _batches(engine)] == [["lost"], ["kept"]]
    assert "could not record 1 pending commands" in caplog.text
