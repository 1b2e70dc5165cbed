"""Reading the events topic as an analyst: assigned partitions, a throwaway group, no commits.

The reader never joins a consumer group (partitions are assigned, not subscribed), never commits
an offset and never writes, so the live workers cannot notice it. It reads each partition from
where the bounds start (found with the broker's offsets-for-times index, so an hour of a long
log costs an hour's worth of reading) up to the partition's end as it was when the run began.
One team is looked for in the partition its key hashes to (`team_partition`: murmur2, as every
Chorus producer partitions), so `--team` reads one partition, not the whole topic.
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from adapters.kafka import kafka_reachable
from replay.bounds import Bounds, ReplayError

#: Messages asked of librdkafka at a time: large batches keep Python out of the per-message path.
BATCH = 10_000
#: A run gives up when the broker sends nothing for this long while records are still due.
STALL_SECONDS = 60.0

Plan = dict[int, tuple[int, int]]  # partition -> (first offset, end offset), end excluded
_error_of = Message.error
_partition_of = Message.partition


class Record(Protocol):
    """A message of the topic as the reader hands it on (a confluent-kafka `Message`)."""

    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a pass over the log.

    A pass makes objects by the million (messages, records, views) and no reference cycles:
    left on, the collector keeps walking everything the pass holds, a sixth of an export's
    time. Reference counting frees what a pass lets go of all the same.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def team_partition(team_id: str, partitions: int) -> int:
    """The partition Java's default partitioner (and librdkafka's `murmur2_random`, which every
    Chorus producer uses) puts a team's key in: `toPositive(murmur2(key)) % partitions`.

    aiokafka's `murmur2` is the Java client's hash as an unsigned 32-bit number; masking the sign
    bit off it is Java's `toPositive` of the signed one.
    """
    from aiokafka.partitioner import murmur2  # here: importing aiokafka costs a replay's start

    return (int(murmur2(team_id.encode())) & 0x7FFFFFFF) % partitions


class LogReader:
    """A read-only pass over some partitions of the events topic; close it when done."""

    def __init__(self, bootstrap: str, topic: str, *, check: bool = True) -> None:
        # `check=False`: the caller has just seen the broker answer (a helper of a pass, whose
        # caller read the topic's metadata): a metadata round trip fewer.
        if check and not kafka_reachable(bootstrap, timeout=5.0):
            raise ReplayError(f"the Kafka broker at {bootstrap} does not answer")
        self.bootstrap = bootstrap
        self.topic = topic
        self._consumer = Consumer(_consumer_config(bootstrap))
        self._open: set[int] = set()

    def partitions(self) -> list[int]:
        """The topic's partitions, as the broker knows them."""
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=10)
        except KafkaException as exc:
            raise ReplayError(f"the broker did not describe {self.topic}: {exc}") from exc
        described = metadata.topics.get(self.topic)
        if described is None or described.error is not None or not described.partitions:
            raise ReplayError(f"there is no events topic {self.topic} on the broker")
        return sorted(described.partitions)

    def plan(self, bounds: Bounds, partitions: Sequence[int]) -> Plan:
        """Offsets to read in each partition for these bounds (the end is fixed now)."""
        plan: Plan = {}
        for partition in partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=10
            )
            plan[partition] = (low, high)
        if bounds.seek_ms is not None and plan:
            asked = [TopicPartition(self.topic, p, bounds.seek_ms) for p in plan]
            for found in self._consumer.offsets_for_times(asked, timeout=10):
                low, high = plan[found.partition]
                # -1: no record was written at or after that time.
                start = high if found.offset < 0 else max(low, found.offset)
                plan[found.partition] = (start, high)
        return plan

    def batches(self, plan: Plan, batch: int = BATCH) -> Iterator[tuple[list[Record], list[int]]]:
        """(messages, partitions that ended) per fetch, until every partition is read or finished.

        Messages are in their partition's order; none past a partition's planned end.
        """
        with collector_paused():
            yield from self._batches(plan, batch)

    def _batches(self, plan: Plan, batch: int) -> Iterator[tuple[list[Record], list[int]]]:
        ends = {p: end for p, (start, end) in plan.items() if end > start}
        positions = {p: plan[p][0] for p in ends}
        self._open = set(ends)
        self._consumer.assign([TopicPartition(self.topic, p, positions[p]) for p in ends])
        heard = time.monotonic()
        while self._open:
            due = sum(ends[p] - positions[p] for p in self._open)
            # Asking for no more than is due lets the last fetch return at once.
            messages = self._consumer.consume(num_messages=max(1, min(batch, due)), timeout=0.5)
            # Without an error a message has its partition and offset: the Protocol says so.
            kept = cast(list[Record], self._keep(messages, ends, positions))
            if not messages:
                if time.monotonic() - heard > STALL_SECONDS:
                    raise ReplayError(f"the broker sent nothing for {STALL_SECONDS:.0f} s")
                self._skip_gaps(ends, positions)
            else:
                heard = time.monotonic()
            ended = [p for p in self._open if positions[p] >= ends[p]]
            self._open.difference_update(ended)
            yield kept, ended

    def finish(self, partition: int) -> None:
        """The caller needs nothing more of this partition: stop fetching it."""
        if partition in self._open:
            self._open.discard(partition)
            self._consumer.pause([TopicPartition(self.topic, partition)])

    def close(self) -> None:
        """Leave without committing anything (there is no group to leave)."""
        self._consumer.close()

    def _keep(
        self, messages: list[Message], ends: dict[int, int], positions: dict[int, int]
    ) -> list[Message]:
        """The messages to hand on; records each partition's progress.

        map() over the methods keeps Python frames out of the per-message work.
        """
        if any(map(_error_of, messages)):
            failed = next(message for message in messages if message.error() is not None)
            raise ReplayError(f"reading {self.topic} failed: {failed.error()}")
        # A partition's messages come in offset order, so its last one tells whether any of
        # them is past the partition's end (or the partition is finished): mostly none is.
        last = dict(zip(map(_partition_of, messages), messages, strict=True))
        overrun = False
        for partition, message in last.items():
            offset = message.offset()
            if partition is None or offset is None:
                continue
            positions[partition] = max(positions.get(partition, 0), offset + 1)
            overrun = overrun or partition not in self._open or offset >= ends[partition]
        if not overrun:
            return messages
        return [
            message
            for message in messages
            if message.partition() in self._open
            and (message.offset() or 0) < ends[message.partition() or 0]
        ]

    def _skip_gaps(self, ends: dict[int, int], positions: dict[int, int]) -> None:
        # Offsets of control or removed records never arrive: trust the consumer's position.
        asked = [TopicPartition(self.topic, p) for p in self._open]
        for found in self._consumer.position(asked):
            if found.offset >= 0:
                positions[found.partition] = max(positions[found.partition], found.offset)


def _consumer_config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "chorus-replay",
        # A group id is required, but assign() never joins it and nothing is ever committed.
        "group.id": f"chorus-replay-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        # An offset deleted by retention meanwhile: start from the oldest one kept.
        "auto.offset.reset": "earliest",
        # A partition whose prefetch queue is full waits this long before its next fetch: the
        # default (1 s) stalls a reader that is only a little slower than the broker for whole
        # seconds at a time, which more than halved an export's rate.
        "fetch.queue.backoff.ms": 10,
        "fetch.wait.max.ms": 100,
        "log_level": 0,
    }
