"""Reads ranges of offsets of the events topic, outside any consumer group (for the decider's
state and for rebuilds).

It starts at a given offset and says at which offset each record is, so a reader can stop and
later go on from where it stopped, and it yields None for a value that is not a JSON object
instead of failing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.envelope import record_or_none

TIMEOUT = 10.0


class EventsReader:
    """One consumer reading partitions of one topic, assigned by hand, committing nothing."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # Reads only: it joins no live group and commits nothing.
                "group.id": f"chorus-rebuild-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 10,
            }
        )

    def __enter__(self) -> EventsReader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._consumer.close()

    def partitions(self) -> list[int]:
        """The topic's partitions, from the broker's metadata."""
        metadata = self._consumer.list_topics(self.topic, timeout=TIMEOUT).topics[self.topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {self.topic}: {metadata.error}")
        return sorted(metadata.partitions)

    def watermarks(self, partition: int) -> tuple[int, int]:
        """(first offset, offset after the last record) of a partition, as of now."""
        low, high = self._consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), timeout=TIMEOUT
        )
        return int(low), int(high)

    def behind(self, offsets: dict[int, int]) -> int:
        """How many records the partitions now hold beyond `offsets`."""
        return sum(self.watermarks(p)[1] - offset for p, offset in offsets.items())

    def read(
        self, partition: int, start: int, end: int | None = None
    ) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(offset, record) from `start` up to `end` (default: the partition's end now)."""
        for offset, _, value in self.messages(partition, start, end):
            yield offset, record_or_none(value)

    def messages(
        self, partition: int, start: int, end: int | None = None
    ) -> Iterator[tuple[int, bytes | None, bytes | None]]:
        """(offset, key, value) as stored, from `start` up to `end` (default: the end now)."""
        low, high = self.watermarks(partition)
        end = high if end is None else min(end, high)
        start = max(start, low)  # older records may have gone with retention
        if start >= end:
            return
        self._consumer.assign([TopicPartition(self.topic, partition, start)])
        try:
            while True:
                message = self._consumer.poll(1.0)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        return
                    raise RuntimeError(f"reading {self.topic}[{partition}] failed: {error}")
                offset = int(message.offset() or 0)
                yield offset, message.key(), message.value()
                if offset >= end - 1:
                    return
        finally:
            self._consumer.unassign()
