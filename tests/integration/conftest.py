"""Fixtures for tests that run Chorus processes against the session's Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from admin.operators import NewOperator, add_operator
from db.engines import migrate
from schemas.envelope import record_from_bytes
from schemas.topics import Topics
from tests.stack import ChorusStack, running


@pytest.fixture
def migrated_database_url(fresh_database_url: str) -> str:
    migrate(fresh_database_url)
    return fresh_database_url


@pytest.fixture
def operator(migrated_database_url: str) -> NewOperator:
    """An operator added straight to the database (its printed password and TOTP URI)."""
    return add_operator(migrated_database_url, f"ops-{uuid.uuid4().hex[:8]}@example.com")


@pytest.fixture
def stack(
    kafka_bootstrap: str, topics: Topics, migrated_database_url: str, tmp_path: Path
) -> Iterator[ChorusStack]:
    """An empty stack: start the processes a test needs with `stack.start(name)`."""
    with running(
        ChorusStack(
            kafka=kafka_bootstrap,
            database_url=migrated_database_url,
            topics=topics,
            workdir=tmp_path,
        )
    ) as started:
        yield started


def read_topic(bootstrap: str, topic: str, partitions: int = 3) -> list[Any]:
    """Every record now in `topic` (None for a tombstone), partition by partition, without
    joining any group."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    records: list[dict[str, Any] | None] = []
    try:
        ends = {}
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high is not None and low is not None and high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        remaining = set(ends)
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(message.partition())
                    continue
                raise AssertionError(str(error))
            value = message.value()
            # A tombstone (a compacted topic's deleted key) is kept as None, in its place.
            records.append(record_from_bytes(value) if value else None)
            if (message.offset() or 0) + 1 >= ends[message.partition() or 0]:
                remaining.discard(message.partition())
    finally:
        consumer.close()
    return records
