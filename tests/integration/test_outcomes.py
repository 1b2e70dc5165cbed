"""The PostgreSQL outcome recorder keeps the outcomes contract, and wakes waiting requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url, text

from db.engines import OUTCOMES_CHANNEL, make_engine
from schemas.commands import StartCall
from streams.outcomes import PostgresOutcomeRecorder, outcomes_of
from tests.contracts import OutcomeRecorderContract, decided_records


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
