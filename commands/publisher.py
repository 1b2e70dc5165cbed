"""Appends commands to Kafka without blocking the event loop; answers after the broker acks."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from infra.kafka import producer_config

# librdkafka gives up on a message after this long, so a request that waits a little longer
# either sees the acknowledgement or knows the command was not appended.
DELIVERY_TIMEOUT_MS = 4000
ANSWER_WITHIN_SECONDS = 4.8


class KafkaUnavailable(Exception):
    """The broker did not acknowledge in time; the command was not appended."""


@dataclass(frozen=True)
class Appended:
    partition: int
    offset: int

    @property
    def position(self) -> str:
        return f"c{self.partition}.{self.offset}"


class CommandPublisher:
    """One idempotent producer per process, polled by a thread of its own."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = Producer(
            producer_config(
                bootstrap,
                **{
                    "message.timeout.ms": DELIVERY_TIMEOUT_MS,
                    "socket.connection.setup.timeout.ms": 3000,
                },
            )
        )
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    async def append(self, key: str, value: bytes) -> Appended:
        """Produce one record keyed by `key` and wait for the broker's acknowledgement."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Appended] = loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, error, message)

        try:
            self._producer.produce(self.topic, key=key.encode(), value=value, on_delivery=delivered)
        except BufferError as exc:
            raise KafkaUnavailable("the producer's queue is full") from exc
        try:
            return await asyncio.wait_for(done, ANSWER_WITHIN_SECONDS)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge the command in time") from exc

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded in time), then stop the polling thread."""
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout)


def _settle(done: asyncio.Future[Appended], error: Any, message: Message) -> None:
    if done.done():
        return
    if error is not None:
        done.set_exception(KafkaUnavailable(f"Kafka refused the command: {error}"))
    else:
        partition, offset = message.partition(), message.offset()
        assert partition is not None and offset is not None  # set on every delivered message
        done.set_result(Appended(partition=partition, offset=offset))
