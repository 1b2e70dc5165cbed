"""The in-memory events log keeps the events-log contract (the Kafka one: tests/integration)."""

from __future__ import annotations

import pytest

from streams.event_log import InMemoryEventLog
from tests.contracts import EventLogContract


class TestInMemoryEventLog(EventLogContract):
    @pytest.fixture
    def log(self) -> InMemoryEventLog:
        return InMemoryEventLog()
