"""The decider's snapshot store: a compacted Kafka topic, and an in-memory one for unit tests."""

from __future__ import annotations

import asyncio

from adapters.producer import AsyncProducer
from streams.events_reader import EventsReader


class KafkaSnapshotStore:
    """Entries of a compacted topic, each in the partition it is written to."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._producer: AsyncProducer | None = None  # connects on the first write, not before

    async def write(self, partition: int, entries: list[tuple[bytes, bytes]]) -> None:
        """Produce the entries in order and return once the broker acknowledged all of them."""
        if not entries:
            return
        if self._producer is None:
            # Snapshots are batched off the command path: larger batches, compressed.
            self._producer = AsyncProducer(
                self._bootstrap,
                "snapshot-writer",
                **{"linger.ms": 50, "compression.type": "lz4", "message.max.bytes": 8_000_000},
            )
        producer = self._producer
        await asyncio.gather(
            *(producer.send(self.topic, key, value, partition) for key, value in entries)
        )

    def latest(self, partition: int) -> list[tuple[bytes, bytes]]:
        """The latest value per key (compaction may not have run: later ones win), in order."""
        kept: dict[bytes, bytes] = {}
        with EventsReader(self._bootstrap, self.topic) as reader:
            for _, key, value in reader.messages(partition, 0):
                if key is None:
                    continue
                kept.pop(key, None)  # the order is that of each key's last write
                if value is not None:  # a tombstone deletes the key
                    kept[key] = value
        return list(kept.items())

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout)


class InMemorySnapshotStore:
    """Partitions as dicts in the order of each key's last write (for unit tests)."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {}

    async def write(self, partition: int, entries: list[tuple[bytes, bytes]]) -> None:
        kept = self.partitions.setdefault(partition, {})
        for key, value in entries:
            kept.pop(key, None)
            kept[key] = value

    def latest(self, partition: int) -> list[tuple[bytes, bytes]]:
        return list(self.partitions.get(partition, {}).items())
