"""Takeover benchmark: from a worker's start to its first decided command, with a long events
log, without decider snapshots (each partition folded from offset 0) and with them, beside the
same on an empty log in the same run (the floor: Faust's start, the group join, one decision).

The log is the replay benchmark's (bench/replay.py: scripted days of many teams, decided and
sealed by the pure deciders, produced in bulk). Each round starts a worker, with one command for
a team of the log already waiting in the commands topic, and times until that command's events
are in the events topic. "Without" deletes the snapshots topic first; the worker then writes
snapshots, and stopping it writes the rest; "with" starts the next worker on them.

    .venv/bin/python -m bench.takeover [--teams 2000] [--events-per-team 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.table import Table

from adapters.kafka import ensure_topics, producer_config
from bench.harness import BenchStack, bench_stack, console
from bench.replay import TeamDay, generate, produce
from devstack.processes import Child, start_service
from schemas.clock import format_time
from schemas.commands import Command, SetPresence
from schemas.mapper import MAPPER
from schemas.topics import Topics

GOAL = 2.0  # times the empty log's


def send_command(bootstrap: str, topics: Topics, team_id: str) -> str:
    """Append one command for `team_id` to the commands topic; its id."""
    command = Command(
        command_id=str(uuid.uuid4()),
        team_id=team_id,
        actor=str(uuid.uuid4()),
        received_at=format_time(datetime.now(UTC)),
        data=SetPresence(status="busy", device_id="bench"),
    )
    producer = Producer(producer_config(bootstrap))
    producer.produce(topics.commands, key=team_id.encode(), value=MAPPER.command_to_bytes(command))
    if producer.flush(30) != 0:
        raise RuntimeError("the command was not appended")
    return command.command_id


def wait_decided(bootstrap: str, topics: Topics, command_id: str, timeout: float) -> None:
    """Return once an event caused by `command_id` is in the events topic."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"takeover-{uuid.uuid4()}", "log_level": 0}
    )
    partitions = consumer.list_topics(topics.events, timeout=10).topics[topics.events].partitions
    ends = [
        TopicPartition(topics.events, p, consumer.get_watermark_offsets(
            TopicPartition(topics.events, p), timeout=10)[1])
        for p in partitions
    ]  # fmt: skip
    consumer.assign(ends)
    needle = command_id.encode()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            value = None if message is None or message.error() else message.value()
            if value and needle in value and orjson.loads(value)["causation_id"] == command_id:
                return
        raise RuntimeError(f"command {command_id} not decided in {timeout:.0f} s")
    finally:
        consumer.close()


def takeover(stack: BenchStack, topics: Topics, team_id: str) -> tuple[float, Child]:
    """Seconds from a worker's start to its decision of a waiting command; the worker."""
    env = {**stack.env(), "CHORUS_TOPIC_PREFIX": topics.prefix}
    command_id = send_command(stack.kafka, topics, team_id)
    started = time.perf_counter()
    child, _ = start_service("worker", env, stack.workdir, timeout=600)
    wait_decided(stack.kafka, topics, command_id, timeout=1800)
    return time.perf_counter() - started, child


def drop_snapshots(bootstrap: str, topics: Topics, partitions: int) -> None:
    """Delete the snapshots topic and create it again, empty."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for future in admin.delete_topics([topics.decider_snapshots]).values():
        future.exception()
    while topics.decider_snapshots in admin.list_topics(timeout=10).topics:
        time.sleep(0.2)  # deletion is asynchronous on the broker
    ensure_topics(bootstrap, topics, partitions)


def snapshots_written(bootstrap: str, topics: Topics, timeout: float = 300) -> None:
    """Wait until every partition of the snapshots topic has entries."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "takeover", "log_level": 0})
    topic = topics.decider_snapshots
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            highs = [consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in parts]
            if all(high > 0 for high in highs):
                return
            time.sleep(1)
        raise RuntimeError("the worker wrote no snapshots")
    finally:
        consumer.close()


def measure(stack: BenchStack, empty: Topics, team_id: str, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"empty log": [], "without snapshots": [], "with snapshots": []}
    for round_ in range(1, rounds + 1):
        seconds, child = takeover(stack, empty, str(uuid.uuid4()))
        child.stop()
        times["empty log"].append(seconds)
        drop_snapshots(stack.kafka, stack.topics, stack.partitions)
        seconds, child = takeover(stack, stack.topics, team_id)
        times["without snapshots"].append(seconds)
        snapshots_written(stack.kafka, stack.topics)
        child.stop()  # writes what changed since
        seconds, child = takeover(stack, stack.topics, team_id)
        child.stop()
        times["with snapshots"].append(seconds)
        console.print(
            f"round {round_}: "
            + ", ".join(f"{name} {samples[-1]:.1f} s" for name, samples in times.items())
        )
    return times


def show(times: dict[str, list[float]], events: int) -> None:
    table = Table(title=f"first decision after a worker starts, {events:,} events in the log")
    for column in ("log", "median", "min", "max", "ratio to the empty log (median)"):
        table.add_column(column, justify="left" if column == "log" else "right")
    floor = statistics.median(times["empty log"])
    for name, samples in times.items():
        ratio = statistics.median(samples) / floor
        verdict = "" if name == "empty log" else f" (goal <= {GOAL}: "
        verdict += "" if not verdict else ("met)" if ratio <= GOAL else "missed)")
        table.add_row(
            name,
            f"{statistics.median(samples):.1f} s",
            f"{min(samples):.1f} s",
            f"{max(samples):.1f} s",
            f"{ratio:.2f}{verdict}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=2000)
    parser.add_argument("--events-per-team", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with bench_stack() as stack:
        empty = Topics(prefix=f"{stack.topics.prefix}-empty")
        ensure_topics(stack.kafka, empty, stack.partitions)
        console.print(f"deciding {args.teams} teams' days ...")
        rows = generate(args.teams, args.events_per_team)
        events = len(rows)
        console.print(f"producing {events:,} records")
        produce(stack.kafka, stack.topics.events, rows)
        del rows
        times = measure(stack, empty, TeamDay(0).team_id, args.rounds)
    show(times, events)


if __name__ == "__main__":
    main()
