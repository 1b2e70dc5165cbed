"""`chorus rebuild` on real processes: the read models rebuilt from the log, swapped in while
the live ones keep answering, and the projector carrying on from the rebuilt tables."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, Engine, text

import streams.readmodels.rebuild as rebuild_module
from db.engines import make_engine
from db.tables import JSONB, rm_calls, rm_members
from streams.readmodels.rebuild_tables import lock_live_tables, try_rebuild_lock
from tests.integration.read_models import ReadModels, plan, send, settled, stored, three_teams
from tests.stack import ChorusStack, Client

ACTIVITY = 150
CANONICAL_INDEXES = {
    "rm_positions_pkey",
    "rm_members_pkey",
    "rm_calls_pkey",
    "rm_calls_team_id_state_idx",
    "rm_changes_pkey",
}


def start(stack: ChorusStack) -> str:
    stack.presence_ttl = 3600.0  # no expiry events while the test compares
    stack.wait_worker_ready(stack.start("worker"))
    return stack.start("commands")


def rebuild(stack: ChorusStack) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "rebuild"],
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "read models rebuilt" in out
    assert "rebuilding read models" not in err, "no progress bar when piped"
    return out


def read_models_tables(engine: Engine) -> tuple[set[str], set[str]]:
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'rm_%'"))
        indexes = conn.execute(text("SELECT indexname FROM pg_indexes WHERE tablename LIKE 'rm_%'"))
        return set(tables.scalars()), set(indexes.scalars())


def test_a_rebuild_gives_the_same_read_models_and_the_live_ones_answer_meanwhile(
    stack: ChorusStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = start(stack)
    setup = three_teams(stack, commands)
    before = settled(stack, send(commands, plan(setup, ACTIVITY)))
    engine = make_engine(stack.database_url)
    answers: list[tuple[str, int, Any]] = []

    def live_answer(moment: str) -> None:
        # From another connection, as a reader of the queries service; a lock would time out.
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            members = conn.execute(sa.select(sa.func.count()).select_from(rm_members)).scalar_one()
            call = conn.execute(
                sa.select(rm_calls.c.body).where(rm_calls.c.call_id == setup.calls[0])
            ).scalar_one()
        answers.append((moment, members, call))

    def build_partition_then_read(*args: Any) -> tuple[int, int]:
        built = build_partition(*args)
        live_answer("building")
        return built

    def lock_then_read(conn: Connection) -> None:
        lock(conn)
        live_answer("swapping")

    build_partition, lock = rebuild_module._build_partition, lock_live_tables
    monkeypatch.setattr(rebuild_module, "_build_partition", build_partition_then_read)
    monkeypatch.setattr(rebuild_module, "lock_live_tables", lock_then_read)
    try:
        rebuild_module.rebuild_read_models(engine, stack.kafka, stack.topics.events)
        assert stored(stack.database_url) == before
        monkeypatch.undo()
        finished(rebuild(stack))  # again: the swapped-in tables are like the migrated ones
        assert stored(stack.database_url) == before
        tables, indexes = read_models_tables(engine)
    finally:
        engine.dispose()
    moments = [moment for moment, *_ in answers]
    assert moments == ["building"] * stack.partitions + ["swapping"]
    live = (len(before.members), before.calls[setup.calls[0]][3])
    assert all((members, call) == live for _, members, call in answers)
    assert tables == {"rm_positions", "rm_members", "rm_calls", "rm_changes"}
    assert indexes == CANONICAL_INDEXES


def test_a_rebuild_repairs_the_read_models_and_catches_up_with_commands_sent_meanwhile(
    stack: ChorusStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = start(stack)
    setup = three_teams(stack, commands)
    acked = send(commands, plan(setup, ACTIVITY // 2))
    dora = stack.client(commands).sign_up("dora")
    team = setup.members[0].new_team(dora)
    call = accepted(dora, f"/v1/teams/{team}/calls", {"invitees": [], "topic": "repairs"})
    call_id = call["events"][0]["data"]["call_id"]
    settled(stack, acked)
    corrupt(stack.database_url, call_id, setup.teams[1])
    # A worker started now loads the corrupted call into its memory at the next event.
    stack.children[0].stop()
    stack.wait_worker_ready(stack.start("worker"))
    mute = f"/v1/calls/{call_id}/mute"
    accepted(dora, mute, {"muted": True})
    wait_for(lambda: live_topic(stack.database_url, call_id) == "corrupted")

    def build_then_more_commands(*args: Any) -> int:
        # Between the build and the swap: decided, projected into the old tables, not built.
        last = [accepted(dora, mute, {"muted": index % 2 == 0}) for index in range(5)][-1]
        wait_for(lambda: stored(stack.database_url).positions.get(team) == int(last["position"]))
        return catch_up_and_swap(*args)

    catch_up_and_swap = rebuild_module._catch_up_and_swap
    monkeypatch.setattr(rebuild_module, "_catch_up_and_swap", build_then_more_commands)
    engine = make_engine(stack.database_url)
    try:
        result = rebuild_module.rebuild_read_models(engine, stack.kafka, stack.topics.events)
    finally:
        engine.dispose()
    for index in range(3):  # the projector must now go on from the rebuilt tables
        accepted(dora, mute, {"muted": index % 2 == 1})

    models = settled(stack, acked)

    assert result.caught_up == 5
    assert models.calls[call_id][3]["topic"] == "repairs"
    assert any(team_id == setup.teams[1] for team_id, _ in models.members)


def test_a_rebuild_of_an_empty_log_gives_empty_read_models(stack: ChorusStack) -> None:
    finished(rebuild(stack))

    assert stored(stack.database_url) == ReadModels({}, {}, {}, {})


def test_only_one_rebuild_runs_at_a_time(stack: ChorusStack) -> None:
    engine = make_engine(stack.database_url)
    try:
        with engine.connect() as holder:
            assert try_rebuild_lock(holder)
            process = rebuild(stack)
            _, err = process.communicate(timeout=120)
        tables, _ = read_models_tables(engine)
    finally:
        engine.dispose()

    assert process.returncode == 1
    assert "another rebuild is running" in err
    assert tables == {"rm_positions", "rm_members", "rm_calls", "rm_changes"}


def accepted(member: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = member.post(path, body, Prefer="wait=10")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def corrupt(database_url: str, call_id: str, team_id: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            corrupted = sa.cast(sa.literal('{"topic": "corrupted"}'), JSONB)
            conn.execute(
                sa.update(rm_calls)
                .values(body=rm_calls.c.body.op("||")(corrupted))
                .where(rm_calls.c.call_id == call_id)
            )
            conn.execute(sa.delete(rm_members).where(rm_members.c.team_id == team_id))
    finally:
        engine.dispose()


def live_topic(database_url: str, call_id: str) -> Any:
    return stored(database_url).calls[call_id][3]["topic"]


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
