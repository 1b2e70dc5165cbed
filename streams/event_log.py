"""Reads and writes one partition of the events topic for the decider."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from infra.kafka import producer_config


def read_partition(bootstrap: str, topic: str, partition: int) -> Iterator[dict[str, Any]]:
    """Every record of one events partition, from the start to the end as of now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            # No offsets are committed: this reads, it never joins a live group's progress.
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
    """Writes a command's events to the partition its command came from, then awaits the ack."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = Producer(producer_config(bootstrap, **{"message.timeout.ms": 30000}))
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="event-writer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        """Produce the records in order and return once the broker acknowledged all of them."""
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        for record in records:
            done: asyncio.Future[None] = loop.create_future()
            pending.append(done)
            self._producer.produce(
                self.topic,
                key=str(record["team_id"]).encode(),
                value=orjson.dumps(record),
                partition=partition,
                on_delivery=_delivery_callback(loop, done),
            )
        await asyncio.gather(*pending)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout)


def _delivery_callback(loop: asyncio.AbstractEventLoop, done: asyncio.Future[None]) -> Any:
    def delivered(error: KafkaError | None, message: Message) -> None:
        loop.call_soon_threadsafe(_settle, done, error)

    return delivered


def _settle(done: asyncio.Future[None], error: KafkaError | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(RuntimeError(f"event not written: {error}"))
