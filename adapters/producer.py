"""An asyncio face on confluent-kafka's producer: await the broker's acknowledgement per record."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from adapters.delivery import NEVER_SENT_CODES, STATS_INTERVAL_MS, Counts, SendTracker
from adapters.kafka import producer_config


class NotAcknowledged(Exception):
    """The broker did not acknowledge the record (see the subclass: refused, or unknown)."""


class Refused(NotAcknowledged):
    """The record was certainly not appended: it was never sent to a broker."""


class OutcomeUnknown(NotAcknowledged):
    """The record may have been appended: it was (or may have been) sent, and no answer came."""


@dataclass(frozen=True)
class Acknowledged:
    partition: int
    offset: int


class AsyncProducer:
    """One idempotent producer (acks=all), polled by a thread of its own so no loop blocks.

    A record that fails is `OutcomeUnknown`, unless the error came before sending (`Refused`);
    `TrackedProducer` tells more failures apart.
    """

    track_sends: ClassVar[bool] = False

    def __init__(self, bootstrap: str, name: str, **config: Any) -> None:
        self._tracker = SendTracker() if self.track_sends else None
        if self._tracker is not None:
            config = {
                "statistics.interval.ms": STATS_INTERVAL_MS,
                "stats_cb": self._tracker.on_stats,
                **config,
            }
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
        acknowledged it, or fails with `Refused` or `OutcomeUnknown`."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Acknowledged] = loop.create_future()
        before = self._tracker.counts() if self._tracker is not None else {}

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None  # set on every delivery
                loop.call_soon_threadsafe(_settle, done, Acknowledged(partition, offset))
            else:
                self._judge(loop, done, error, before)

        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(topic, key=key, value=value, on_delivery=delivered, **options)
        except BufferError as exc:
            raise Refused("the producer's queue is full") from exc
        except KafkaException as exc:  # refused locally (too large, unknown partition)
            raise Refused(f"Kafka refused the record: {exc}") from exc
        return done

    def _judge(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[Acknowledged],
        error: KafkaError,
        before: Counts,
    ) -> None:
        def verdict(never_sent: bool) -> None:
            failure = (
                Refused(f"Kafka did not take the record, which was never sent: {error.str()}")
                if never_sent
                else OutcomeUnknown(f"Kafka did not acknowledge the record: {error.str()}")
            )
            loop.call_soon_threadsafe(_settle, done, failure)

        if self._tracker is None:
            verdict(error.code() in NEVER_SENT_CODES)
        else:
            self._tracker.judge(error, before, verdict)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded in time), then stop the polling thread."""
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout)


class TrackedProducer(AsyncProducer):
    """A producer whose failed record is `Refused` when no produce request went out in its
    lifetime (librdkafka's statistics tell), else `OutcomeUnknown`."""

    track_sends = True


def _settle(done: asyncio.Future[Acknowledged], outcome: Acknowledged | Exception) -> None:
    if done.done():  # the caller stopped waiting
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
