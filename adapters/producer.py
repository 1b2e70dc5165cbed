"""An asyncio face on confluent-kafka's producer: await the broker's acknowledgement per record."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from adapters.kafka import producer_config


class NotAcknowledged(Exception):
    """The broker did not acknowledge the record; it was not appended."""


@dataclass(frozen=True)
class Acknowledged:
    partition: int
    offset: int


class AsyncProducer:
    """One idempotent producer (acks=all), polled by a thread of its own so no loop blocks."""

    def __init__(self, bootstrap: str, name: str, **config: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **config))
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=name, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Acknowledged]:
        """Queue one record (a None value is a tombstone); the future resolves when the broker
        acknowledged it."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Acknowledged] = loop.create_future()

        def delivered(error: KafkaError | None, message: Message) -> None:
            loop.call_soon_threadsafe(_settle, done, error, message)

        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(topic, key=key, value=value, on_delivery=delivered, **options)
        except BufferError as exc:
            raise NotAcknowledged("the producer's queue is full") from exc
        return done

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded in time), then stop the polling thread."""
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout)


def _settle(done: asyncio.Future[Acknowledged], error: KafkaError | None, message: Message) -> None:
    if done.done():  # the caller stopped waiting
        return
    if error is not None:
        done.set_exception(NotAcknowledged(f"Kafka refused the record: {error}"))
        return
    partition, offset = message.partition(), message.offset()
    assert partition is not None and offset is not None  # set on every delivered message
    done.set_result(Acknowledged(partition=partition, offset=offset))
