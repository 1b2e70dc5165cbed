"""The PostgreSQL outcome recorder keeps the outcomes contract, wakes waiting requests, and
loses no outcome while the database fails."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, event, make_url, text

from config.faults import Faults
from db.engines import OUTCOMES_CHANNEL, make_engine
from db.outcomes import BareOutcome, outcome_notice
from schemas.commands import CommandPayload, JoinCall, StartCall
from schemas.mapper import MAPPER
from schemas.topics import Topics
from streams.decider import Decider
from streams.domain.testing import command
from streams.event_log import KafkaEventLog
from streams.outcomes import BEFORE_OUTCOMES_RECORDED, PostgresOutcomeRecorder, outcomes_of
from tests.contracts import OutcomeRecorderContract, decided_records
from tests.integration.test_event_log import _wait_until_readable


class TestPostgresOutcomeRecorder(OutcomeRecorderContract):
    @pytest.fixture
    def recorder(self, migrated_database_url: str) -> Iterator[PostgresOutcomeRecorder]:
        self.url = migrated_database_url
        self.engine: Engine = make_engine(migrated_database_url)
        yield PostgresOutcomeRecorder(self.engine)
        self.engine.dispose()

    def stored(self, command_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT status, reason, position, command_position, events"
                    " FROM command_outcomes WHERE command_id = :id"
                ),
                {"id": command_id},
            ).one_or_none()
        return None if row is None else dict(row._mapping)

    def record_pending(self, row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO command_outcomes"
                    " (command_id, team_id, actor, status, position, command_position, events)"
                    " VALUES (:command_id, :team_id, :actor, 'pending', :position,"
                    " :command_position, '[]'::jsonb)"
                ),
                row,
            )

    def test_recording_wakes_the_requests_waiting_for_the_command(
        self, recorder: PostgresOutcomeRecorder
    ) -> None:
        records = decided_records(str(uuid.uuid4()), StartCall(call_id="c1"))
        url = make_url(self.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"LISTEN {OUTCOMES_CHANNEL}")

            recorder.record(outcomes_of(records))

            woken = [n.payload for n in conn.notifies(timeout=10, stop_after=1)]
        assert woken == [records[0]["causation_id"]]

    def test_a_lease_refreshed_is_told_whole_by_its_notification(
        self, recorder: PostgresOutcomeRecorder
    ) -> None:
        lease = {
            "command_id": str(uuid.uuid4()),
            "team_id": str(uuid.uuid4()),
            "actor": "user",
            "status": "accepted",
            "reason": None,
            "position": "7",
            "command_position": "c0.4",
            "events": [],
        }
        records = decided_records(str(uuid.uuid4()), StartCall(call_id="c1"))
        url = make_url(self.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"LISTEN {OUTCOMES_CHANNEL}")

            recorder.record([lease, *outcomes_of(records)])

            woken = {n.payload for n in conn.notifies(timeout=10, stop_after=2)}
        # The lease's outcome is whole in its notification; the call start's is read.
        assert woken == {f"{lease['command_id']} 7", records[0]["causation_id"]}
        assert outcome_notice(f"{lease['command_id']} 7")[1] == BareOutcome(
            lease["command_id"], "7"
        )

    def test_a_batch_of_outcomes_is_one_insert_and_wakes_each_waiter(
        self, recorder: PostgresOutcomeRecorder
    ) -> None:
        rows = [
            row
            for _ in range(50)
            for row in outcomes_of(decided_records(str(uuid.uuid4()), StartCall(call_id="c1")))
        ]
        self.record_pending({**rows[0], "position": "c0.0", "command_position": "c0.0"})
        writes: list[tuple[str, bool]] = []

        def seen(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
            if "command_outcomes" in statement:
                writes.append((statement, many))

        event.listen(self.engine, "before_cursor_execute", seen)
        url = make_url(self.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f"LISTEN {OUTCOMES_CHANNEL}")

            recorder.record(rows)

            woken = [n.payload for n in conn.notifies(timeout=10, stop_after=len(rows))]
        assert sorted(woken) == sorted(row["command_id"] for row in rows)
        # One statement for every row (not executemany: one statement per row).
        ((_, many),) = writes
        assert not many
        assert {self.stored(row["command_id"])["status"] for row in rows} == {"accepted"}  # type: ignore[index]

    def test_a_row_the_table_refuses_is_left_out_and_the_batch_recorded(
        self, recorder: PostgresOutcomeRecorder
    ) -> None:
        rows = [
            row
            for _ in range(3)
            for row in outcomes_of(decided_records(str(uuid.uuid4()), StartCall(call_id="c1")))
        ]
        refused = {**rows[1], "command_id": "not-a-uuid"}  # another producer's command

        recorder.record([rows[0], refused, rows[2]])

        assert [self.stored(row["command_id"]) is not None for row in rows] == [True, False, True]


async def test_outcomes_the_database_failed_to_take_are_recorded_once_it_takes_them(
    migrated_database_url: str, kafka_bootstrap: str, topics: Topics
) -> None:
    engine = make_engine(migrated_database_url)
    # The first six tries fail: the decider's three at once, then three of the background's.
    faults = Faults.parse(f"{BEFORE_OUTCOMES_RECORDED}=fail@1-6")
    _wait_until_readable(kafka_bootstrap, topics.events)
    events = KafkaEventLog(kafka_bootstrap, topics.events)
    decider = Decider(events, PostgresOutcomeRecorder(engine, faults), presence_ttl=30)
    team = str(uuid.uuid4())
    try:
        start = _command(team, "ann", StartCall(call_id="c1"))
        join = _command(team, "bob", JoinCall(call_id="c1"))
        assert await decider.decide(0, 0, start[1]) == "accepted"
        assert await decider.decide(0, 1, join[1]) == "accepted"  # the decider moved on
        assert decider.outcomes is not None and decider.outcomes.queued == 2
        assert _status(engine, start[0]) is None

        assert await decider.outcomes.drain(30)

        assert (_status(engine, start[0]), _status(engine, join[0])) == ("accepted", "accepted")
    finally:
        events.close()
        engine.dispose()


def _command(team_id: str, actor: str, payload: CommandPayload) -> tuple[str, bytes]:
    each = command(actor, payload, team_id=team_id, command_id=str(uuid.uuid4()))
    return each.command_id, MAPPER.command_to_bytes(each)


def _status(engine: Engine, command_id: str) -> str | None:
    with engine.connect() as conn:
        query = text("SELECT status FROM command_outcomes WHERE command_id = :id")
        return conn.execute(query, {"id": command_id}).scalar_one_or_none()
