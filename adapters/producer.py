"""An asyncio face on confluent-kafka's producer: await the broker's acknowledgement per record."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from adapters.delivery import NEVER_SENT_CODES, STATS_INTERVAL_MS, Counts, SendTracker
from adapters.kafka import producer_config

# How often the loop polls while records await their acknowledgement, and how long the thread
# blocks in one poll.
BUSY_POLL_SECONDS = 0.001
IDLE_POLL_SECONDS = 0.05
# From this many records in flight the loop is busy with other requests: the thread, which
# would wait for the GIL, stands by and the loop's polls serve the acknowledgements. With
# fewer, the thread serves each at once (the loop's 1 ms tick would add latency).
LOOP_POLLS_FROM = 2


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
    """One idempotent producer (acks=all) whose acknowledgements resolve asyncio futures.

    A thread blocked in librdkafka serves the callbacks while few records are in flight. Under
    load the event loop that sent them polls the producer itself every millisecond instead:
    the thread would need the GIL back for every delivery callback, which a busy loop hands
    over only every switch interval (5 ms), so acknowledgements would queue behind it.
    Use it from one event loop at a time.

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._in_flight = 0  # records sent from the loop whose future is not settled yet
        self._ticking = False
        self._loop_polls = threading.Event()  # set while the loop serves: the thread stands by
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=name, daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            loop = self._loop  # a loop closed with records in flight polls no more: take over
            if self._loop_polls.is_set() and loop is not None and not loop.is_closed():
                self._stopping.wait(IDLE_POLL_SECONDS)
            else:
                self._producer.poll(IDLE_POLL_SECONDS)

    def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Acknowledged]:
        """Queue one record (a None value is a tombstone); the future resolves when the broker
        acknowledged it, or fails with `Refused` or `OutcomeUnknown`."""
        loop = self._attach()
        done: asyncio.Future[Acknowledged] = loop.create_future()
        before = self._tracker.counts() if self._tracker is not None else {}

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is None:
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None  # set on every delivery
                self._settle(done, Acknowledged(partition, offset))
            else:
                self._judge(done, error, before)

        options: dict[str, Any] = {} if partition is None else {"partition": partition}
        try:
            self._producer.produce(topic, key=key, value=value, on_delivery=delivered, **options)
        except BufferError as exc:
            raise Refused("the producer's queue is full") from exc
        except KafkaException as exc:  # refused locally (too large, unknown partition)
            raise Refused(f"Kafka refused the record: {exc}") from exc
        self._in_flight += 1
        if self._in_flight >= LOOP_POLLS_FROM and not self._loop_polls.is_set():
            self._loop_polls.set()
        if not self._ticking:
            self._ticking = True
            loop.call_later(BUSY_POLL_SECONDS, self._tick)
        return done

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # the first send, or the last loop was closed
            self._loop, self._loop_thread = loop, threading.get_ident()
            self._in_flight, self._ticking = 0, False
        return loop

    def _tick(self) -> None:
        """Serve the acknowledgements that arrived; again soon while records are in flight."""
        assert self._loop is not None
        if self._stopping.is_set():
            return
        try:
            self._producer.poll(0)
        finally:
            if self._in_flight < LOOP_POLLS_FROM and self._loop_polls.is_set():
                self._loop_polls.clear()
            if self._in_flight and not self._stopping.is_set():
                self._loop.call_later(BUSY_POLL_SECONDS, self._tick)
            else:
                self._ticking = False

    def _settle(
        self, done: asyncio.Future[Acknowledged], outcome: Acknowledged | Exception
    ) -> None:
        """Resolve `done` on its loop, from whichever thread served the callback."""
        if threading.get_ident() == self._loop_thread and done.get_loop() is self._loop:
            self._resolve(done, outcome)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            done.get_loop().call_soon_threadsafe(self._resolve, done, outcome)

    def _resolve(
        self, done: asyncio.Future[Acknowledged], outcome: Acknowledged | Exception
    ) -> None:
        if done.get_loop() is self._loop:
            self._in_flight -= 1
        if done.done():  # the caller stopped waiting
            return
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    def _judge(self, done: asyncio.Future[Acknowledged], error: KafkaError, before: Counts) -> None:
        def verdict(never_sent: bool) -> None:
            failure = (
                Refused(f"Kafka did not take the record, which was never sent: {error.str()}")
                if never_sent
                else OutcomeUnknown(f"Kafka did not acknowledge the record: {error.str()}")
            )
            self._settle(done, failure)

        if self._tracker is None:
            verdict(error.code() in NEVER_SENT_CODES)
        else:
            self._tracker.judge(error, before, verdict)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (bounded in time), then stop polling."""
        self._producer.flush(timeout)
        self._stopping.set()
        self._poller.join(timeout)


class TrackedProducer(AsyncProducer):
    """A producer whose failed record is `Refused` when no produce request went out in its
    lifetime (librdkafka's statistics tell), else `OutcomeUnknown`."""

    track_sends = True
