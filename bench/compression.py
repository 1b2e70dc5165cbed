"""Compression benchmark: bytes on disk of the events topic, uncompressed and compressed.

The same realistic records (`bench.replay.generate`: decided and sealed team days) are written
to topics stored with each `compression.type`, by an uncompressed producer, so the broker
compresses them as it stores them, as the events topic does. Twice: in bulk (large batches, as a
busy worker or a mirror writes) and one record per batch (a quiet team, one command at a time:
the least a codec can do). Sizes are those of the topic's log segments in the broker's own log
dirs, so the benchmark runs a broker of its own.

    .venv/bin/python -m bench.compression [--teams 200] [--events-per-team 100] [--single 3000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import uuid
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from rich.table import Table

from adapters.kafka import producer_config
from bench.harness import console
from bench.replay import generate
from devstack.broker import KafkaBroker

CODECS = ("uncompressed", "lz4", "zstd")
PARTITIONS = 12


def create(bootstrap: str, name: str, codec: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, PARTITIONS, 1, config={"compression.type": codec})
    for future in admin.create_topics([topic]).values():
        future.result(30)


def write(bootstrap: str, topic: str, rows: list[tuple[bytes, bytes]], *, bulk: bool) -> None:
    """Every (key, value), in large batches, or each alone in its batch (`bulk=False`)."""
    linger = {"linger.ms": 50, "batch.size": 1_000_000} if bulk else {"linger.ms": 0}
    producer = Producer(
        producer_config(bootstrap, **linger, **{"compression.type": "none"})
        | {"queue.buffering.max.messages": 1_000_000}
    )
    for key, value in rows:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        if not bulk:
            producer.flush(30)  # acknowledged before the next is sent: one record per batch
    if producer.flush(120) != 0:
        raise RuntimeError("the broker did not take every record within 120 s")


def on_disk(log_dirs: Path, topic: str) -> int:
    """Bytes of the topic's log segments (indexes left out: they are preallocated)."""
    return sum(path.stat().st_size for path in log_dirs.glob(f"{topic}-*/*.log"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=200)
    parser.add_argument("--events-per-team", type=int, default=100)
    parser.add_argument("--single", type=int, default=3000, help="records written one by one")
    args = parser.parse_args()
    rows = [(key, value) for _, key, value in generate(args.teams, args.events_per_team)]
    single = rows[: args.single]
    workdir = Path(tempfile.mkdtemp(prefix="chorus-compression-"))
    broker = KafkaBroker(workdir / "kafka")
    sizes: dict[tuple[str, str], int] = {}
    try:
        bootstrap = broker.start()
        for mode, chosen in (("bulk", rows), ("one record per batch", single)):
            for codec in CODECS:
                topic = f"compression-{codec}-{uuid.uuid4().hex[:6]}"
                create(bootstrap, topic, codec)
                write(bootstrap, topic, chosen, bulk=mode == "bulk")
                sizes[(mode, codec)] = on_disk(workdir / "kafka" / "data", topic)
                console.print(f"{mode}, {codec}: {sizes[(mode, codec)]:,} bytes")
    finally:
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    show(sizes, {"bulk": rows, "one record per batch": single})


def show(sizes: dict[tuple[str, str], int], written: dict[str, list[tuple[bytes, bytes]]]) -> None:
    table = Table(title="events topic on disk, by the topic's compression.type")
    for column in ("records", "payload", "codec", "on disk", "saved vs uncompressed"):
        table.add_column(column, justify="right")
    for mode, rows in written.items():
        payload = sum(len(key) + len(value) for key, value in rows)
        plain = sizes[(mode, "uncompressed")]
        for codec in CODECS:
            size = sizes[(mode, codec)]
            saved = f"{1 - size / plain:.0%}" if codec != "uncompressed" else ""
            table.add_row(f"{len(rows):,} ({mode})", f"{payload:,} B", codec, f"{size:,} B", saved)
    console.print(table)


if __name__ == "__main__":
    main()
