"""The media node's view of Kafka: the events and media-nodes topics, every partition, from the
beginning, read by one consumer in a thread of its own (no consumer group, nothing committed).

Records go to the event loop in batches; a batch also says whether the reader has caught up
with what the topics held when it started (before that, a node must not act on its view).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from schemas.topics import Topics

log = logging.getLogger(__name__)

BATCH = 500
POLL_SECONDS = 0.1
METADATA_TIMEOUT = 10.0


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None


OnBatch = Callable[[list[Record], bool], None]
"""Called in the event loop with a batch of records and whether the reader has caught up."""


class KafkaFeed:
    """Reads the two topics until stopped and hands each batch to the event loop."""

    def __init__(self, bootstrap: str, topics: Topics, on_batch: OnBatch) -> None:
        self._topics = topics
        self._on_batch = on_batch
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"chorus-media-{uuid.uuid4()}",  # required, never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 20,  # a call event should reach the node at once
                "log.connection.close": False,
            }
        )
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[tuple[str, int], int] = {}  # partition -> end offset still to reach

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Assign every partition from its beginning and start reading (blocks for metadata);
        batches go to `loop`."""
        self._loop = loop
        assignment: list[TopicPartition] = []
        for topic in (self._topics.media_nodes, self._topics.events):
            metadata = self._consumer.list_topics(topic, timeout=METADATA_TIMEOUT).topics[topic]
            if metadata.error is not None:
                raise RuntimeError(f"topic {topic}: {metadata.error}")
            for partition in sorted(metadata.partitions):
                tp = TopicPartition(topic, partition)
                low, high = self._consumer.get_watermark_offsets(tp, timeout=METADATA_TIMEOUT)
                if high > low:
                    self._pending[(topic, partition)] = high
                assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        self._consumer.assign(assignment)
        self._thread = threading.Thread(target=self._run, name="media-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)
        self._consumer.close()

    def _run(self) -> None:
        caught_up = not self._pending
        if caught_up:
            self._deliver([], True)
        while not self._stopping.is_set():
            messages = self._next_messages()
            batch: list[Record] = []
            for message in messages:
                topic, partition = message.topic() or "", message.partition() or 0
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        self._pending.pop((topic, partition), None)
                    else:
                        log.warning("media feed: %s", error)
                    continue
                offset = message.offset() or 0
                if offset + 1 >= self._pending.get((topic, partition), 0):
                    self._pending.pop((topic, partition), None)
                batch.append(Record(topic, partition, message.key(), message.value()))
            now_caught_up = not self._pending
            if batch or now_caught_up != caught_up:
                caught_up = now_caught_up
                self._deliver(batch, caught_up)

    def _next_messages(self) -> list[Message]:
        """What has arrived, as soon as anything has: wait for one message, then take what is
        already there. (`consume(n, timeout)` alone waits the whole timeout unless n messages
        come, which made every event reach the node 50 ms late on average.)"""
        first = self._consumer.poll(POLL_SECONDS)
        if first is None:
            return []
        return [first, *self._consumer.consume(BATCH - 1, 0)]

    def _deliver(self, batch: list[Record], caught_up: bool) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self._on_batch, batch, caught_up)
        except RuntimeError:
            self._stopping.set()  # the loop is closed: the service is stopping
