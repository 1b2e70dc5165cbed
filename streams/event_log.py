"""Reads one partition of the events topic (to rebuild a decider's state) and writes to it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from infra.producer import AsyncProducer


def read_partition(bootstrap: str, topic: str, partition: int) -> Iterator[dict[str, Any]]:
    """Every record of one events partition, from the start to its end as of now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            # Reads only: it joins no live group and commits nothing.
            "group.id": f"chorus-rebuild-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 10,
        }
    )
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high is None or low is None or high <= low:
            return
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        while True:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    return
                raise RuntimeError(f"reading {topic}[{partition}] failed: {error}")
            value = message.value()
            if value is not None:
                yield orjson.loads(value)
            if (message.offset() or 0) >= high - 1:
                return
    finally:
        consumer.close()


class EventWriter:
    """Writes a command's events to the partition its command came from."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = AsyncProducer(bootstrap, "event-writer", **{"message.timeout.ms": 30000})

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        """Produce the records in order and return once the broker acknowledged all of them."""
        sent = [
            self._producer.send(
                self.topic, str(record["team_id"]).encode(), orjson.dumps(record), partition
            )
            for record in records
        ]
        await asyncio.gather(*sent)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout)
