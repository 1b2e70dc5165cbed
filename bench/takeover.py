"""Takeover benchmark: from a worker's start to its first decided command, with an empty events
log (the floor: Faust's start, the group join, one decision; measured in each round, just
before the takeover, so that both see the same load) and with logs of 1 M and 5 M events, in
one run.

What a round models: a worker takes over partitions that a previous worker owned until it
stopped or died. The log is the replay benchmark's (bench/replay.py: scripted days of the same
teams, decided and sealed by the pure deciders, produced in bulk; a longer log is a longer
history of the same teams). For each size, a previous worker is run once on the log without
snapshots (its first decision is shown, for comparison: a cold start folds each partition from
offset 0); once it has written its snapshots it is stopped. Then more events are appended (the
decisions made after the previous worker's last snapshots: `--tail`, by default one snapshot
cadence per partition), and the worker group's offsets of the events topic are committed at the
log's end (the previous worker projected everything; the read models themselves are not built,
so the projector's work at takeover is the new events only). Before each round the snapshots
topic is put back as the previous worker left it. Each round starts a worker with one command
for a team of the log waiting in the commands topic and times until that command's events are
in the events topic ("decided"), and until its outcome is in PostgreSQL ("outcome").

    .venv/bin/python -m bench.takeover [--sizes 1000000,5000000] [--teams 2000] [--rounds 3]

CHORUS_BENCH_PYSPY=<dir> records each measured worker with py-spy (flame graphs in <dir>).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.table import Table

from adapters.kafka import ensure_topics, producer_config
from bench.harness import BenchStack, bench_stack, console, percentile
from bench.replay import TeamDay, generate, produce
from db.engines import make_engine
from db.tables import command_outcomes
from devstack.processes import Child, chorus_argv, wait_healthy
from devstack.server import free_port
from schemas.clock import format_time
from schemas.commands import Command, SetPresence
from schemas.mapper import MAPPER
from schemas.topics import Topics
from streams.snapshot_store import KafkaSnapshotStore
from streams.snapshot_writer import SNAPSHOT_EVERY_COMMANDS

GOAL_RATIO = 2.0  # times the empty log's
GOAL_SECONDS = 5.0
Entries = dict[int, list[tuple[bytes, bytes]]]  # snapshot entries by partition


@dataclass
class Times:
    floor: list[float] = field(default_factory=list)  # the empty log's, in the same rounds
    decided: list[float] = field(default_factory=list)
    outcome: list[float] = field(default_factory=list)


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


def end_offsets(consumer: Consumer, topic: str) -> list[TopicPartition]:
    """Each partition of `topic` at its end now (retried while a new topic gets its leaders)."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    for attempt in range(50):
        try:
            return [
                TopicPartition(
                    topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1]
                )
                for p in partitions
            ]
        except KafkaException:
            if attempt == 49:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def watch_events(bootstrap: str, topic: str) -> Consumer:
    """A consumer of `topic` from its end now (so nothing written later is missed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"takeover-{uuid.uuid4()}", "log_level": 0}
    )
    consumer.assign(end_offsets(consumer, topic))
    return consumer


def wait_decided(consumer: Consumer, command_id: str, timeout: float) -> None:
    """Return once an event caused by `command_id` is read by `consumer`."""
    needle = command_id.encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = consumer.poll(0.05)
        value = None if message is None or message.error() else message.value()
        if value and needle in value and orjson.loads(value)["causation_id"] == command_id:
            return
    raise RuntimeError(f"command {command_id} not decided in {timeout:.0f} s")


def wait_outcome(engine: sa.Engine, command_id: str, timeout: float) -> None:
    """Return once the outcome of `command_id` is recorded (not pending)."""
    query = sa.select(command_outcomes.c.status).where(command_outcomes.c.command_id == command_id)
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            status = conn.execute(query).scalar()
            conn.rollback()
            if status is not None and status != "pending":
                return
            time.sleep(0.05)
    raise RuntimeError(f"outcome of {command_id} not recorded in {timeout:.0f} s")


def start_worker(
    stack: BenchStack, topics: Topics, label: str, more_env: dict[str, str] | None = None
) -> Child:
    """A worker process on `topics` (not waiting for it), recorded by py-spy if asked."""
    port = free_port()
    child = Child(
        name="worker",
        argv=chorus_argv("worker", "--host", "127.0.0.1", "--port", str(port)),
        env={**stack.env(), "CHORUS_TOPIC_PREFIX": topics.prefix, **(more_env or {})},
        log_path=stack.workdir / f"worker-{label}.log",
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    stack.children.append(child)  # stopped with the stack, whatever happens
    child.start()
    profiles = os.environ.get("CHORUS_BENCH_PYSPY")
    if profiles and child.process is not None:
        Path(profiles).mkdir(parents=True, exist_ok=True)
        argv = [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(child.process.pid),
            "--nonblocking",
        ]
        argv += ["--duration", "60", "--output", f"{profiles}/{label}.svg"]
        subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return child


def takeover(
    stack: BenchStack,
    topics: Topics,
    team_id: str,
    label: str,
    timeout: float = 120,
    more_env: dict[str, str] | None = None,
) -> tuple[float, float, Child]:
    """Seconds from a worker's start to its decision of a waiting command, and to its outcome."""
    command_id = send_command(stack.kafka, topics, team_id)
    consumer = watch_events(stack.kafka, topics.events)
    engine = make_engine(stack.database_url)
    try:
        started = time.perf_counter()
        child = start_worker(stack, topics, label, more_env)
        wait_decided(consumer, command_id, timeout)
        decided = time.perf_counter() - started
        wait_outcome(engine, command_id, timeout)
        outcome = time.perf_counter() - started
    finally:
        consumer.close()
        engine.dispose()
    if wait_healthy([child], 60):
        raise RuntimeError(f"the worker died:\n{child.log_tail(60)}")
    return decided, outcome, child


def commit_at_end(bootstrap: str, group: str, topic: str) -> None:
    """Commit the group's offsets of `topic` at its end: all projected (the group must be empty)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        consumer.commit(offsets=end_offsets(consumer, topic), asynchronous=False)
    finally:
        consumer.close()


def snapshots_written(bootstrap: str, topics: Topics, timeout: float) -> None:
    """Wait until every partition of the snapshots topic has entries (all partitions restored)."""
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


def saved_snapshots(bootstrap: str, topics: Topics, partitions: int) -> Entries:
    """The latest snapshot entries of every partition."""
    store = KafkaSnapshotStore(bootstrap, topics.decider_snapshots)
    return {p: store.latest(p) for p in range(partitions)}


def put_back(bootstrap: str, topics: Topics, partitions: int, entries: Entries) -> None:
    """The snapshots topic as `entries` (and nothing else), as a previous worker left it."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for future in admin.delete_topics([topics.decider_snapshots]).values():
        future.exception()
    while topics.decider_snapshots in admin.list_topics(timeout=10).topics:
        time.sleep(0.2)  # deletion is asynchronous on the broker
    ensure_topics(bootstrap, topics, partitions)
    producer = Producer(
        producer_config(bootstrap, **{"linger.ms": 20, "compression.type": "lz4"})
        | {"message.max.bytes": 8_000_000}
    )
    for partition, kept in entries.items():
        for key, value in kept:
            producer.produce(topics.decider_snapshots, value, key, partition)
            producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the snapshots were not put back")


def prepare(
    stack: BenchStack, size: int, teams: int, tail: int
) -> tuple[Topics, Entries, float, int]:
    """A log of about `size` events and the snapshots a previous worker left on it."""
    topics = Topics(prefix=f"{stack.topics.prefix}-{size}")
    ensure_topics(stack.kafka, topics, stack.partitions)
    started = time.perf_counter()
    rows = generate(teams, max(1, size // teams))
    console.print(f"{len(rows):,} events decided in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    produce(stack.kafka, topics.events, rows[:-tail])
    console.print(f"{len(rows) - tail:,} produced in {time.perf_counter() - started:.0f} s")
    commit_at_end(stack.kafka, stack.worker_id, topics.events)
    # It must write no event to the log's teams (the tail, appended later, continues their
    # chains): a new team's command, and no presence expiry while it runs.
    quiet = {"CHORUS_PRESENCE_TTL": str(24 * 3600)}
    cold, _, child = takeover(stack, topics, str(uuid.uuid4()), f"{size}-cold", 3600, quiet)
    console.print(f"previous worker, no snapshots: first decision after {cold:.1f} s")
    snapshots_written(stack.kafka, topics, timeout=3600)
    child.stop(timeout=60)  # writes the snapshots of what changed since
    entries = saved_snapshots(stack.kafka, topics, stack.partitions)
    produce(stack.kafka, topics.events, rows[-tail:])  # decided after its last snapshots
    commit_at_end(stack.kafka, stack.worker_id, topics.events)
    return topics, entries, cold, len(rows)


def measure_log(
    stack: BenchStack, topics: Topics, empty: Topics, entries: Entries, rounds: int
) -> Times:
    """Each round: a worker on the empty log (the floor, at the same load), then a takeover."""
    times = Times()
    for round_ in range(1, rounds + 1):
        floor, _, child = takeover(stack, empty, str(uuid.uuid4()), f"{topics.prefix}-empty")
        child.stop(timeout=60)
        put_back(stack.kafka, topics, stack.partitions, entries)
        decided, outcome, child = takeover(
            stack, topics, TeamDay(0).team_id, f"{topics.prefix}-{round_}"
        )
        child.stop(timeout=60)
        commit_at_end(stack.kafka, stack.worker_id, topics.events)
        times.floor.append(floor)
        times.decided.append(decided)
        times.outcome.append(outcome)
        console.print(
            f"  round {round_}: empty log {floor:.2f} s; decided {decided:.2f} s, "
            f"outcome {outcome:.2f} s"
        )
    return times


def show(logs: dict[int, tuple[Times, float]], tail: int) -> None:
    title = (
        "first decision after a worker starts (takeover: snapshots as the previous worker left "
        f"them, {tail:,} events after them; projector offsets at the log's end)"
    )
    table = Table(title=title)
    columns = ("log", "empty log p50 (floor)", "decided p50", "p90", "min", "max")
    more = ("ratio to floor", "goal", "outcome p50", "cold start (no snapshots)")
    for column in (*columns, *more):
        table.add_column(column, justify="left" if column == "log" else "right")
    for events, (times, cold) in logs.items():
        samples = times.decided
        p50 = statistics.median(samples)
        # Each round against the empty log's in the same round: a noisy machine slows both.
        ratio = statistics.median(t / f for t, f in zip(samples, times.floor, strict=True))
        met = ratio <= GOAL_RATIO and p50 < GOAL_SECONDS
        table.add_row(
            f"{events:,} events",
            _seconds(times.floor),
            f"{p50:.2f} s",
            f"{percentile(samples, 90):.2f} s",
            f"{min(samples):.2f} s",
            f"{max(samples):.2f} s",
            f"{ratio:.2f}",
            f"<= {GOAL_RATIO:.0f}x and < {GOAL_SECONDS:.0f} s: " + ("met" if met else "missed"),
            _seconds(times.outcome),
            f"{cold:.1f} s",
        )
    console.print(table)


def _seconds(samples: list[float]) -> str:
    return f"{statistics.median(samples):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000000,5000000", help="events in each log")
    parser.add_argument("--teams", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tail", type=int, default=None, help="events after the previous worker's snapshots"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with bench_stack() as stack:
        tail = args.tail if args.tail is not None else stack.partitions * SNAPSHOT_EVERY_COMMANDS
        empty = Topics(prefix=f"{stack.topics.prefix}-empty")
        ensure_topics(stack.kafka, empty, stack.partitions)
        logs: dict[int, tuple[Times, float]] = {}
        for size in sizes:
            console.print(f"{size:,} events:")
            topics, entries, cold, events = prepare(stack, size, args.teams, tail)
            logs[events] = (measure_log(stack, topics, empty, entries, args.rounds), cold)
    show(logs, tail)


if __name__ == "__main__":
    main()
