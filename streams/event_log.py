"""The events log of the decider: the Kafka topic, and an in-memory one for unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from adapters.producer import AsyncProducer
from streams.events_reader import EventsReader


class KafkaEventLog:
    """Writes a command's events to the partition its command came from, and reads partitions."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._producer: AsyncProducer | None = None  # connects on the first write, not before

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        """Produce the records in order and return once the broker acknowledged all of them."""
        if self._producer is None:
            self._producer = AsyncProducer(
                self._bootstrap, "event-writer", **{"message.timeout.ms": 30000}
            )
        producer = self._producer
        sent = [
            producer.send(
                self.topic, str(record["team_id"]).encode(), orjson.dumps(record), partition
            )
            for record in records
        ]
        await asyncio.gather(*sent)

    def records(self, partition: int) -> list[dict[str, Any]]:
        """Every JSON-object record now in the partition, in order (others are skipped)."""
        with EventsReader(self._bootstrap, self.topic) as reader:
            return [record for _, record in reader.read(partition, 0) if record is not None]

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout)


class InMemoryEventLog:
    """Partitions as lists; records go through JSON as on the wire, so no one shares a dict."""

    def __init__(self) -> None:
        self._partitions: dict[int, list[bytes]] = {}

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        self._partitions.setdefault(partition, []).extend(orjson.dumps(r) for r in records)

    def records(self, partition: int) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self._partitions.get(partition, [])]
