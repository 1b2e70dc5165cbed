"""The read-model store on the real PostgreSQL: round trips, the position guard, NOTIFY."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from db.engines import make_engine
from db.tables import rm_calls, rm_changes
from schemas.commands import (
    AllocateRoom,
    CommandPayload,
    EndCall,
    JoinCall,
    ReleaseRoom,
    SetPresence,
    StartCall,
)
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command
from streams.projection import Change, TeamView, changes_horizon, project, without_settled_calls
from streams.readmodels.store import CHANNEL, load_view, save, table_generation, write_changes

TEAM = str(uuid.uuid4())
ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())
CALL = str(uuid.uuid4())
_OLDEST_CHANGE = sa.select(sa.func.min(rm_changes.c.seq))


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


def records_of(*steps: tuple[str, CommandPayload]) -> list[dict[str, Any]]:
    state, records = TeamState(), []
    for at, (actor, payload) in enumerate(steps):
        made, state = decide_and_seal(state, command(actor, payload, at=at, team_id=TEAM))
        records += made
    return records


HISTORY = records_of(
    (ALICE, SetPresence(status="busy", device_id="d1")),
    (ALICE, StartCall(call_id=CALL, topic="plans")),
    (BOB, JoinCall(call_id=CALL)),
    ("media:n1", AllocateRoom(call_id=CALL, node="n1", offer_url="http://n1/r")),
    (BOB, EndCall(call_id=CALL)),
    ("media:n1", ReleaseRoom(call_id=CALL)),
)


def apply_all(engine: Engine, records: list[dict[str, Any]]) -> TeamView:
    view = TeamView(team_id=TEAM)
    for record in records:
        after, changes = project(view, record)
        with engine.begin() as conn:
            assert save(conn, view, after, changes)
        view = after
    return view


def test_a_saved_view_loads_back_equal_with_its_changes(engine: Engine) -> None:
    view = apply_all(engine, HISTORY[:5])

    with engine.connect() as conn:
        assert load_view(conn, TEAM) == view
        kinds = conn.execute(
            sa.select(rm_changes.c.seq, rm_changes.c.kind).order_by(rm_changes.c.seq)
        ).all()
        stored = conn.execute(
            sa.select(rm_calls.c.state, rm_calls.c.started_at, rm_calls.c.body)
        ).one()
    assert [tuple(row) for row in kinds] == [(1, "presence")] + [(s, "call") for s in (2, 3, 4, 5)]
    assert (stored.state, stored.started_at) == ("ended", view.calls[CALL]["started_at"])
    assert stored.body == view.calls[CALL]


def test_a_step_applied_already_or_from_a_stale_view_writes_nothing(engine: Engine) -> None:
    view = apply_all(engine, HISTORY[:3])
    empty = TeamView(team_id=TEAM)
    first, changes = project(empty, HISTORY[0])
    second, _ = project(first, HISTORY[1])

    with engine.begin() as conn:
        assert not save(conn, empty, first, changes)  # seq 1 is stored already
        assert not save(conn, first, second, [])  # the stored position is 3, not 1
    with engine.connect() as conn:
        assert load_view(conn, TEAM) == view


def test_settled_calls_are_left_out_when_asked(engine: Engine) -> None:
    view = apply_all(engine, HISTORY)

    with engine.connect() as conn:
        assert load_view(conn, TEAM, settled_calls=False) == without_settled_calls(view)
        assert load_view(conn, TEAM) == view and CALL in view.calls


def test_a_save_checked_against_other_tables_writes_nothing(engine: Engine) -> None:
    with engine.connect() as conn:
        generation = table_generation(conn)
    empty = TeamView(team_id=TEAM)
    after, changes = project(empty, HISTORY[0])

    with engine.begin() as conn:
        assert not save(conn, empty, after, changes, generation=generation + 1)
    with engine.begin() as conn:
        assert save(conn, empty, after, changes, generation=generation)
    later, changes = project(after, HISTORY[1])
    with engine.begin() as conn:
        assert not save(conn, after, later, changes, generation=generation + 1)
        assert save(conn, after, later, changes, generation=generation)


def test_saving_notifies_the_team_and_position_at_commit(
    engine: Engine, migrated_database_url: str
) -> None:
    url = migrated_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        apply_all(engine, HISTORY[:2])
        payloads = [n.payload for n in listener.notifies(timeout=5, stop_after=2)]

    assert payloads == [f"{TEAM}:1", f"{TEAM}:2"]


def test_old_changes_are_forgotten_when_the_position_crosses_a_step(engine: Engine) -> None:
    start = TeamView(team_id=TEAM, seq=10_998)
    with engine.begin() as conn:
        assert save(conn, TeamView(team_id=TEAM), start, [])
        write_changes(conn, [(TEAM, Change(s, "speaking", {})) for s in range(990, 1010)])
    step = TeamView(team_id=TEAM, seq=10_999)
    crossing = TeamView(team_id=TEAM, seq=11_000)

    with engine.begin() as conn:
        assert save(conn, start, step, [])
    with engine.connect() as conn:
        assert conn.execute(_OLDEST_CHANGE).scalar_one() == 990
    with engine.begin() as conn:
        assert save(conn, step, crossing, [])
    with engine.connect() as conn:
        oldest = conn.execute(_OLDEST_CHANGE).scalar_one()
    assert oldest == changes_horizon(11_000) + 1 == 1_001
