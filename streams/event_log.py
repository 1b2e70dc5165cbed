"""The events log of the decider: the Kafka topic, and an in-memory one for unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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

    async def write(self, partition: int, records: list[dict[str, Any]]) -> int | None:
        """Produce the records in order and return once the broker acknowledged all of them.

        Returns the offset after the last one (None when there were none).
        """
        if not records:
            return None
        if self._producer is None:
            # zstd, as the topic stores it: the broker then keeps the batch as written.
            self._producer = AsyncProducer(
                self._bootstrap,
                "event-writer",
                **{"message.timeout.ms": 30000, "compression.type": "zstd"},
            )
        producer = self._producer
        sent = [
            producer.send(
                self.topic, str(record["team_id"]).encode(), orjson.dumps(record), partition
            )
            for record in records
        ]
        acks = await asyncio.gather(*sent)
        return max(ack.offset for ack in acks) + 1

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(offset, record) of every JSON-object record from `start` (others are skipped)."""
        with EventsReader(self._bootstrap, self.topic) as reader:
            for offset, record in reader.read(partition, start):
                if record is not None:
                    yield offset, record

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout)


class InMemoryEventLog:
    """Partitions as lists; records go through JSON as on the wire, so no one shares a dict."""

    def __init__(self) -> None:
        self._partitions: dict[int, list[bytes]] = {}

    async def write(self, partition: int, records: list[dict[str, Any]]) -> int | None:
        kept = self._partitions.setdefault(partition, [])
        kept.extend(orjson.dumps(r) for r in records)
        return len(kept) if records else None

    def read(self, partition: int, start: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        kept = self._partitions.get(partition, [])
        for offset in range(start, len(kept)):
            yield offset, orjson.loads(kept[offset])

    def records(self, partition: int) -> list[dict[str, Any]]:
        """Every record of the partition, in order (for tests)."""
        return [record for _, record in self.read(partition)]
