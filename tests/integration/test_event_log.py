"""The Kafka events log keeps the events-log contract, on the session's broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from schemas.topics import Topics
from streams.event_log import KafkaEventLog
from tests.contracts import EventLogContract


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    def log(self, kafka_bootstrap: str, topics: Topics) -> Iterator[KafkaEventLog]:
        events = KafkaEventLog(kafka_bootstrap, topics.events)
        yield events
        events.close()
