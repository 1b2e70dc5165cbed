"""The Kafka events log keeps the events-log contract, on the session's broker."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException

from schemas.topics import Topics
from streams.event_log import KafkaEventLog
from streams.events_reader import EventsReader
from tests.conftest import TEST_PARTITIONS
from tests.contracts import EventLogContract

# What a broker answers about a topic it created a moment ago, until its leaders are elected.
NOT_YET = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    def log(self, kafka_bootstrap: str, topics: Topics) -> Iterator[KafkaEventLog]:
        _wait_until_readable(kafka_bootstrap, topics.events)
        events = KafkaEventLog(kafka_bootstrap, topics.events)
        yield events
        events.close()


def _wait_until_readable(bootstrap: str, topic: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with EventsReader(bootstrap, topic) as reader:
        for partition in range(TEST_PARTITIONS):
            while True:
                try:
                    reader.watermarks(partition)
                    break
                except KafkaException as exc:
                    if exc.args[0].code() not in NOT_YET or time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)  # polling for the leader election, nothing else
