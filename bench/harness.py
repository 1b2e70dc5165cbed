"""What the benchmarks share: a real stack started for the run, floors, percentiles, a report."""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from adapters.kafka import ensure_topics, producer_config
from config.settings import Settings
from db.engines import migrate
from devstack.broker import KafkaBroker
from devstack.database import LocalPostgres
from devstack.processes import ServiceStack
from schemas.topics import Topics

console = Console(width=150)
PARTITIONS = 12  # of each topic a benchmark's stack creates


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Row:
    metric: str
    p50: float
    p99: float
    floor_name: str
    floor_p50: float
    floor_p99: float
    unit: str = "ms"


@dataclass
class Report:
    title: str
    rows: list[Row] = field(default_factory=list)
    rates: list[tuple[str, float, str, float]] = field(default_factory=list)

    def show(self) -> None:
        table = Table(title=self.title)
        for column in ("metric", "p50", "p99", "floor", "floor p50", "floor p99", "p99 ratio"):
            table.add_column(column, justify="right" if column != "metric" else "left")
        for row in self.rows:
            table.add_row(
                row.metric,
                f"{row.p50:.2f} {row.unit}",
                f"{row.p99:.2f} {row.unit}",
                row.floor_name,
                f"{row.floor_p50:.2f} {row.unit}",
                f"{row.floor_p99:.2f} {row.unit}",
                f"{row.p99 / row.floor_p99:.2f}x",
            )
        console.print(table)
        if self.rates:
            rates = Table(title=f"{self.title}: throughput")
            for column in ("metric", "rate", "floor", "floor rate", "ratio"):
                rates.add_column(column)
            for name, rate, floor_name, floor_rate in self.rates:
                rates.add_row(
                    name,
                    f"{rate:.0f}/s",
                    floor_name,
                    f"{floor_rate:.0f}/s",
                    f"{rate / floor_rate:.2f}",
                )
            console.print(rates)


#: A benchmark's services: the stack tests use, with the topics' default partition count.
BenchStack = ServiceStack


@contextmanager
def bench_stack() -> Iterator[BenchStack]:
    """Kafka and PostgreSQL of the run's own (or CHORUS_KAFKA / CHORUS_DATABASE_URL)."""
    workdir = Path(tempfile.mkdtemp(prefix="chorus-bench-"))
    settings = Settings.from_env()
    with ExitStack() as stack:
        # Only servers named explicitly: a `chorus up` stack file is not the benchmark's to use.
        kafka = settings.kafka_bootstrap if settings.kafka_explicit else None
        if not kafka:
            broker = KafkaBroker(workdir / "kafka", heap="1g")
            stack.callback(broker.stop)
            kafka = broker.start()
        database_url = settings.database_url if settings.database_explicit else None
        if not database_url:
            database = LocalPostgres(workdir / "postgres")
            stack.callback(database.stop)
            database_url = database.start()
        topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}")
        ensure_topics(kafka, topics, PARTITIONS)
        migrate(database_url)
        bench = BenchStack(
            kafka=kafka,
            database_url=database_url,
            topics=topics,
            workdir=workdir,
            worker_id=f"bench-{topics.prefix}",
        )
        try:
            yield bench
        finally:
            bench.stop_children()
    if os.environ.get("CHORUS_BENCH_KEEP"):
        console.print(f"logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def kafka_round_trips(bootstrap: str, samples: int) -> list[float]:
    """The floor: a bare confluent-kafka produce (acks=all) then consume, in milliseconds."""
    topic = Topics(prefix=f"floor{uuid.uuid4().hex[:8]}")
    ensure_topics(bootstrap, topic, 1)
    producer = Producer(producer_config(bootstrap))
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"floor-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
            "fetch.min.bytes": 1,
        }
    )
    consumer.assign([TopicPartition(topic.events, 0, 0)])
    producer.produce(topic.events, key=b"warm", value=b"warm")
    producer.flush(10)
    _consume_one(consumer)
    timings = []
    for index in range(samples):
        started = time.perf_counter()
        producer.produce(topic.events, key=b"k", value=str(index).encode())
        producer.poll(0)
        _consume_one(consumer)
        timings.append((time.perf_counter() - started) * 1000)
        producer.poll(0)
    producer.flush(10)
    consumer.close()
    return timings


def _consume_one(consumer: Consumer) -> None:
    while True:
        message = consumer.poll(5.0)
        if message is None:
            raise RuntimeError("the floor's consumer received nothing in 5 s")
        error = message.error()
        if error is None:
            return
        if error.code() != KafkaError._PARTITION_EOF:
            raise RuntimeError(str(error))


@dataclass(frozen=True)
class WrkRun:
    """What wrk measured: requests per second (any answer), and the non-2xx answers."""

    rate: float
    errors: int


def wrk_rate(url: str, seconds: int, connections: int, script: Path | None = None) -> float:
    """Requests per second that wrk measured; non-2xx answers fail the run."""
    run = wrk(url, seconds, connections, script)
    if run.errors:
        raise RuntimeError(f"wrk saw {run.errors} error answers from {url}")
    return run.rate


def wrk(url: str, seconds: int, connections: int, script: Path | None = None) -> WrkRun:
    """One wrk run; its non-2xx answers (a 503 that sheds load) are counted, not fatal."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make bench does)")
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    printed = subprocess.run([*argv, url], check=True, capture_output=True, text=True)
    return wrk_figures(printed.stdout)


def wrk_figures(output: str) -> WrkRun:
    """The figures of wrk's printout."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkRun(rate=float(rate.group(1)), errors=int(errors.group(1)) if errors else 0)


def sign_up(base_url: str) -> tuple[str, str, str]:
    """A new member with a team: (token, user_id, team_id)."""
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.post(
            "/v1/accounts",
            json={"email": email, "password": "benchmark password", "display_name": "Bench"},
        ).raise_for_status()
        session = client.post(
            "/v1/sessions", json={"email": email, "password": "benchmark password"}
        ).json()
        token = session["token"]
        team = client.post(
            "/v1/teams", json={"name": "bench"}, headers={"Authorization": f"Bearer {token}"}
        ).json()
    return token, session["user_id"], team["team_id"]


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 99)
