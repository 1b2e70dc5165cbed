"""Where a change's way to the read model goes: the stages between a command sent and its
change committed, from the timestamps its producers gave the command's and the events' records.

Each record's timestamp is the time its producer was handed it (CreateTime, this machine's clock,
as the benchmark's): the commands service for the command, the worker for its events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, TopicPartition

from replay.reading import team_partition


@dataclass(frozen=True)
class Sample:
    """One change as the benchmark saw it: its command id, when it was sent and when its
    NOTIFY came (wall clock, ms)."""

    command_id: str
    sent_ms: float
    notified_ms: float


def stages(
    bootstrap: str,
    commands_topic: str,
    events_topic: str,
    partitions: int,
    team_id: str,
    samples: list[Sample],
) -> dict[str, list[float]]:
    """Per stage, the milliseconds each sample spent in it."""
    partition = team_partition(team_id, partitions)
    appended = _timestamps(bootstrap, commands_topic, partition, "command_id")
    decided = _timestamps(bootstrap, events_topic, partition, "causation_id")
    spent: dict[str, list[float]] = {
        "sent->command appended": [],
        "command appended->events appended": [],
        "events appended->read model NOTIFY": [],
    }
    for sample in samples:
        command_at, events_at = appended.get(sample.command_id), decided.get(sample.command_id)
        if command_at is None or events_at is None:
            continue  # a change the log does not show (not one of this run's)
        spent["sent->command appended"].append(command_at - sample.sent_ms)
        spent["command appended->events appended"].append(events_at - command_at)
        spent["events appended->read model NOTIFY"].append(sample.notified_ms - events_at)
    return spent


def _timestamps(bootstrap: str, topic: str, partition: int, key: str) -> dict[str, float]:
    """The first record's timestamp (ms) by the value of `key` in one partition's JSON records."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-stages", "enable.auto.commit": False}
    )
    found: dict[str, float] = {}
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        consumer.assign([TopicPartition(topic, partition, low)])
        offset, deadline = low, time.monotonic() + 60
        while offset < high and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=5):
                if message.error() is not None:
                    continue
                offset = (message.offset() or 0) + 1
                try:
                    value = orjson.loads(message.value() or b"null")
                except orjson.JSONDecodeError:
                    continue
                if isinstance(value, dict) and isinstance(value.get(key), str):
                    found.setdefault(value[key], float(message.timestamp()[1]))
    finally:
        consumer.close()
    return found
