"""The projector's polls on the real PostgreSQL: several teams' records written in one
transaction give the tables the per-record fold gives, once, whatever a poll holds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from db.engines import make_engine
from db.tables import quarantine, rm_positions
from schemas.commands import CommandPayload, JoinCall, SetPresence, StartCall
from schemas.envelope import record_to_bytes
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command
from streams.projector import Projector
from streams.readmodels.store import CHANNEL
from tests.integration.read_models import expected, stored

ALICE, BOB = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def engine(migrated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(migrated_database_url)
    yield engine
    engine.dispose()


def team_log(team_id: str, call_id: str) -> list[dict[str, Any]]:
    """A team's records: presence of two members, a call started and joined."""
    steps: list[tuple[str, CommandPayload]] = [
        (ALICE, SetPresence(status="busy", device_id="d1")),
        (BOB, SetPresence(status="available", device_id="d2")),
        (ALICE, StartCall(call_id=call_id, topic="plans")),
        (BOB, JoinCall(call_id=call_id)),
        (ALICE, SetPresence(status="away", device_id="d1")),
    ]
    state, records = TeamState(), []
    for at, (actor, payload) in enumerate(steps):
        made, state = decide_and_seal(state, command(actor, payload, at=at, team_id=team_id))
        records += made
    return records


def interleaved(*logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The teams' records as one partition holds them: each team's in order, teams mixed."""
    return [record for step in zip(*logs, strict=True) for record in step]


def poll(records: list[dict[str, Any]], partition: int = 0) -> list[tuple[int, bytes]]:
    return [(partition, record_to_bytes(record)) for record in records]


def notified(conn: psycopg.Connection[Any]) -> list[str]:
    return [notice.payload for notice in conn.notifies(timeout=0.5, stop_after=100)]


def test_a_poll_of_several_teams_is_written_once_with_one_notice_per_team(
    engine: Engine, migrated_database_url: str
) -> None:
    teams = [str(uuid.uuid4()) for _ in range(3)]
    logs = [team_log(team, str(uuid.uuid4())) for team in teams]
    records = interleaved(*logs)
    listener = psycopg.connect(
        sa.make_url(migrated_database_url).set(drivername="postgresql").render_as_string(False),
        autocommit=True,
    )
    listener.execute(f"LISTEN {CHANNEL}")

    outcomes = asyncio.run(Projector(engine).apply_many(poll(records)))

    assert outcomes == ["applied"] * len(records)
    assert stored(migrated_database_url) == expected(records)
    # One step per team: the position moved once, to its last record.
    assert sorted(notified(listener)) == sorted(f"{team}:{len(logs[0])}" for team in teams)
    listener.close()


def test_a_poll_read_again_after_a_crash_changes_nothing(
    engine: Engine, migrated_database_url: str
) -> None:
    logs = [team_log(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(2)]
    records = interleaved(*logs)
    asyncio.run(Projector(engine).apply_many(poll(records[:6])))
    before = stored(migrated_database_url)

    # A new projector (as after a crash) gets the same poll, then the rest with it.
    again = Projector(engine)
    assert asyncio.run(again.apply_many(poll(records[:6]))) == ["skipped"] * 6
    assert stored(migrated_database_url) == before
    outcomes = asyncio.run(again.apply_many(poll(records)))

    assert outcomes == ["skipped"] * 6 + ["applied"] * (len(records) - 6)
    assert stored(migrated_database_url) == expected(records)


def test_a_team_written_by_another_projector_meanwhile_is_projected_from_the_tables(
    engine: Engine, migrated_database_url: str
) -> None:
    moved, quiet = str(uuid.uuid4()), str(uuid.uuid4())
    logs = [team_log(moved, str(uuid.uuid4())), team_log(quiet, str(uuid.uuid4()))]
    ours, theirs = Projector(engine), Projector(engine)
    asyncio.run(ours.apply_many(poll(interleaved(*logs)[:2])))  # both teams at seq 1
    # Another worker (a rebalance) projects the moved team further: our view of it is stale.
    asyncio.run(theirs.apply_many(poll(logs[0][:3])))

    outcomes = asyncio.run(ours.apply_many(poll(interleaved(*logs)[2:])))

    # The moved team's records 2 and 3 are found stored; its later ones and the quiet team's
    # are applied.
    assert outcomes == ["skipped", "applied"] * 2 + ["applied"] * 4
    assert stored(migrated_database_url) == expected(interleaved(*logs))


def test_a_record_the_tables_refuse_sets_aside_only_itself(
    engine: Engine, migrated_database_url: str
) -> None:
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    # An id is any short text to the decider, but no UUID to the tables: they refuse the call.
    logs = [team_log(good, str(uuid.uuid4())), team_log(bad, "not-a-uuid")]
    records = interleaved(*logs)

    outcomes = asyncio.run(Projector(engine).apply_many(poll(records)))

    refused = logs[1][2]  # call.started
    assert outcomes[records.index(refused)] == "quarantined"
    assert outcomes.count("quarantined") == 1
    with engine.connect() as conn:
        kept = conn.execute(sa.select(quarantine.c.team_id, quarantine.c.seq)).all()
        positions = dict(conn.execute(sa.select(rm_positions.c.team_id, rm_positions.c.seq)).all())
    assert [(str(team), seq) for team, seq in kept] == [(bad, refused["seq"])]
    assert {str(team): seq for team, seq in positions.items()} == {good: 5, bad: 5}
    assert stored(migrated_database_url).members == expected(records).members
