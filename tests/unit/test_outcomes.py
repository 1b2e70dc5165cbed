"""The in-memory outcome recorder keeps the outcomes contract (PostgreSQL: tests/integration)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.outcomes import InMemoryOutcomeRecorder
from tests.contracts import OutcomeRecorderContract

FIELDS = ("status", "reason", "position", "command_position", "events")


class TestInMemoryOutcomeRecorder(OutcomeRecorderContract):
    @pytest.fixture
    def recorder(self) -> InMemoryOutcomeRecorder:
        self.memory = InMemoryOutcomeRecorder()
        return self.memory

    def stored(self, command_id: str) -> dict[str, Any] | None:
        row = self.memory.rows.get(command_id)
        return None if row is None else {field: row[field] for field in FIELDS}

    def record_pending(self, row: dict[str, Any]) -> None:
        self.memory.rows[row["command_id"]] = row
