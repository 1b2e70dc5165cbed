"""Replay benchmark: events per second of `chorus replay export` (JSONL to a file), of
`chorus replay state` and of `chorus rebuild` (the read models rebuilt into PostgreSQL and
swapped in), beside a bare confluent-kafka consumer reading the same topic in the same run (the
floor: librdkafka fetching and handing each record's bytes to Python).

The floor uses the reader's own fetch settings (`TUNED`), so that the ratio is what the
replay's work costs; a bare consumer with librdkafka's defaults is shown beside it. The log is a
million realistic records: scripted days of many teams (presence, calls started, joined, muted,
spoken in, left and ended, rooms allocated, some commands rejected), decided and sealed by the
pure deciders, serialised once and produced in bulk (no worker). Rounds alternate the readers;
each rate is compared with the floor's in the same round and the median of those ratios
reported, so that a noisy machine slows both sides alike. Beside each rate: CPU microseconds per
event (this process's threads and the replay's helper process; the broker's are not counted),
and the share of the machine's cores busy while the reader ran (every process, the broker too):
a reader as busy as the floor is bound by the cores it shares with the broker, one well below it
by its own critical path.

    .venv/bin/python -m bench.replay [--teams 2000] [--events-per-team 500] [--rounds 5]
                                     [--readers floor state ...] [--profile DIR]

With `--profile DIR`, each replay reader runs once more after the rounds (not counted) under
py-spy, which records this process and the replay's helper (collapsed stacks in DIR), and the
functions its samples were in are printed: what bounds a replay's rate.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import resource
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.table import Table

from adapters.kafka import producer_config
from bench.harness import BenchStack, bench_stack, console
from bench.proc import busy_share, machine_ticks
from bench.profile import profiled
from bench.profile import show as show_profile
from cli.main import main as chorus
from schemas.clock import format_time, parse_time
from schemas.commands import (
    AllocateRoom,
    Command,
    CommandPayload,
    EndCall,
    JoinCall,
    LeaveCall,
    ReportSpeaking,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.fields import PresenceStatus
from streams.domain import TeamState, decide_and_seal

GOAL = 0.5  # of the floor's rate
UNGOALED = ("defaults", "rebuild")  # shown for comparison; the goal is the replay's
DAY_START = parse_time("2026-11-23T08:00:00.000Z")
STATUSES: tuple[PresenceStatus, ...] = ("available", "busy", "away", "available", "offline")

Produced = list[tuple[str, bytes, bytes]]  # (occurred_at, key, value)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class TeamDay:
    """One team's scripted day: six members, presence changes and one call after another."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.team_id = _uuid(self.rng)
        self.members = [_uuid(self.rng) for _ in range(6)]
        self.call: str | None = None  # the active call
        self.inside: list[str] = []  # its participants
        self.ended: list[str] = []  # calls of the past

    def records(self, events: int) -> Produced:
        """About `events` sealed records, as (occurred_at, key, value)."""
        state, out, key = TeamState(), Produced(), self.team_id.encode()
        seconds = self.rng.uniform(0, 600)
        while len(out) < events:
            seconds += self.rng.expovariate(1 / 20)  # about three commands a minute, all day
            actor, payload = self.next_command()
            command = Command(
                command_id=_uuid(self.rng),
                team_id=self.team_id,
                actor=actor,
                received_at=format_time(DAY_START + timedelta(seconds=seconds)),
                data=payload,
            )
            records, state = decide_and_seal(state, command)
            out += [(r["occurred_at"], key, orjson.dumps(r)) for r in records]
        return out

    def next_command(self) -> tuple[str, CommandPayload]:
        """(actor, payload) of the team's next command."""
        rng, roll, call = self.rng, self.rng.random(), self.call
        anyone = rng.choice(self.members)
        if call is None:
            if roll < 0.6:
                return anyone, SetPresence(status=rng.choice(STATUSES), device_id="desk")
            self.call, self.inside = _uuid(rng), [anyone]
            return anyone, StartCall(call_id=self.call, invitees=(), topic="standup")
        if roll < 0.03 and self.ended:  # joining a call of long ago: rejected, `call_ended`
            return anyone, JoinCall(call_id=rng.choice(self.ended))
        if roll < 0.08:
            return "media:1", AllocateRoom(call_id=call, node="media-1", offer_url=f"/m/{call}")
        outside = [m for m in self.members if m not in self.inside]
        if roll < 0.3 and outside:
            self.inside.append(rng.choice(outside))
            return self.inside[-1], JoinCall(call_id=call)
        speaker = rng.choice(self.inside)
        if roll < 0.45:
            return speaker, SetMuted(call_id=call, muted=rng.random() < 0.5)
        if roll < 0.75:
            speaking = rng.random() < 0.5
            return "media:1", ReportSpeaking(call_id=call, user_id=speaker, speaking=speaking)
        if 0.85 <= roll < 0.95:
            return anyone, SetPresence(status=rng.choice(STATUSES), device_id="phone")
        leaving = roll < 0.85  # else the speaker ends the call for everyone
        if leaving:
            self.inside.remove(speaker)
        if not leaving or not self.inside:  # the last one to leave ends it too
            self.call, self.inside = None, []
            self.ended.append(call)
        return speaker, LeaveCall(call_id=call) if leaving else EndCall(call_id=call)


def _team_batch(args: tuple[int, int, int]) -> Produced:
    first, count, events = args
    return [row for seed in range(first, first + count) for row in TeamDay(seed).records(events)]


def generate(teams: int, events_per_team: int, workers: int = 2) -> Produced:
    """Every team's records, ordered by occurred_at (each team's stay in seq order)."""
    step = max(1, teams // (workers * 8))
    jobs = [(first, min(step, teams - first), events_per_team) for first in range(0, teams, step)]
    with ProcessPoolExecutor(workers) as pool:
        rows = [row for batch in pool.map(_team_batch, jobs) for row in batch]
    rows.sort(key=lambda row: row[0])  # stable: a team's equal times keep their seq order
    return rows


def produce(bootstrap: str, topic: str, rows: list[tuple[str, bytes, bytes]]) -> None:
    """Every record, keyed by team (murmur2, as the worker's partitions are), in bulk."""
    producer = Producer(
        producer_config(bootstrap, **{"linger.ms": 20, "batch.size": 1_000_000})
        | {"queue.buffering.max.messages": 1_000_000}
    )
    for _, key, value in rows:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("the broker did not take every record within 120 s")


#: The replay reader's fetch settings: the floor reads as fast as the replay could.
TUNED = {"fetch.wait.max.ms": 100, "fetch.queue.backoff.ms": 10}


def bare_read(bootstrap: str, topic: str, tuning: dict[str, int]) -> int:
    """The floor: a bare consumer reading every record of the topic once, in batches."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"floor-{uuid.uuid4()}",
            "enable.auto.commit": False,
            **tuning,
        }
    )
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in metadata.partitions
    }
    total, read = sum(ends.values()), 0
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    while read < total:
        for message in consumer.consume(num_messages=min(10_000, total - read), timeout=1.0):
            if message.error() is not None:
                raise RuntimeError(str(message.error()))
            message.value()
            read += 1
    consumer.close()
    return read


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and of the children it waited for)."""
    started, cpu = time.perf_counter(), _cpu()
    run()
    return time.perf_counter() - started, _cpu() - cpu


def _cpu() -> float:
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def quietly(argv: list[str]) -> None:
    """Run a `chorus` command in this process, its stdout thrown away."""
    with open(os.devnull, "wb") as sink, contextlib.redirect_stdout(io.TextIOWrapper(sink)):
        code = chorus(argv)
    if code != 0:
        raise RuntimeError(f"chorus {' '.join(argv)} exited {code}")


READERS = ("floor", "defaults", "export", "state", "rebuild")


def replay_argv(target: Path) -> dict[str, list[str]]:
    """The `chorus` command line of each replay reader (an export writes to `target`)."""
    return {
        "export": ["replay", "export", "-o", str(target)],
        "state": ["replay", "state", "--at", "now"],
    }


@dataclass
class Rounds:
    """Per reader, one value per round: events/s, CPU us per event, machine busy share."""

    rates: dict[str, list[float]]
    cpu: dict[str, list[float]]
    busy: dict[str, list[float]]


def measure(
    stack: BenchStack, events: int, rounds: int, readers: tuple[str, ...] = READERS
) -> Rounds:
    """Events per second of each reader, per round; its CPU microseconds per event; and the
    share of the machine's cores busy while it ran.

    CPU counts every thread of this process (librdkafka's too) and the helper processes a
    replay starts; not the broker's. On a busy machine it moves less than the rates do. The
    busy share counts every process (the broker's too).
    """
    os.environ.update(stack.env())  # the chorus command line reads its settings from there
    target = stack.workdir / "export.jsonl"
    runs: dict[str, Callable[[], object]] = {
        "floor": lambda: bare_read(stack.kafka, stack.topics.events, TUNED),
        # For comparison only: librdkafka's defaults stall a queue that fills up for 1 s.
        "defaults": lambda: bare_read(stack.kafka, stack.topics.events, {}),
        "export": lambda: quietly(replay_argv(target)["export"]),
        "state": lambda: quietly(replay_argv(target)["state"]),
        "rebuild": lambda: quietly(["rebuild"]),
    }
    runs = {name: run for name, run in runs.items() if name in readers}
    measured = Rounds(*({name: list[float]() for name in runs} for _ in range(3)))
    for round_ in range(1, rounds + 1):
        for name, run in runs.items():
            ticks = machine_ticks()
            wall, used = timed(run)
            measured.busy[name].append(busy_share(ticks, machine_ticks()))
            measured.rates[name].append(events / wall)
            measured.cpu[name].append(used / events * 1e6)
            target.unlink(missing_ok=True)
            console.print(
                f"round {round_}: {name} {measured.rates[name][-1]:,.0f} events/s, "
                f"{measured.cpu[name][-1]:.1f} us CPU per event, "
                f"machine {measured.busy[name][-1]:.0%} busy"
            )
    return measured


def show(rounds: Rounds, events: int) -> None:
    """Medians and best of each reader, and each one's rate over the floor's in the same round."""
    rates, cpu, busy = rounds.rates, rounds.cpu, rounds.busy
    table = Table(title=f"replay of {events:,} events, {len(rates['floor'])} rounds")
    columns = (
        "reader",
        "median",
        "best",
        "ratio to floor (median of rounds)",
        "goal",
        "CPU/event",
        "machine busy",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "reader" else "right")
    floor = rates["floor"]
    table.add_row(
        "bare confluent-kafka consumer (floor)",
        *_rates(floor),
        "1.00",
        "",
        _cpu_of(cpu["floor"]),
        _busy_of(busy["floor"]),
    )
    for name, label in (
        ("defaults", "bare consumer, librdkafka defaults"),
        ("export", "replay export -> JSONL file"),
        ("state", "replay state"),
        ("rebuild", "rebuild read models (PostgreSQL)"),
    ):
        if name not in rates:
            continue
        ratio = statistics.median(
            rate / base for rate, base in zip(rates[name], floor, strict=True)
        )
        verdict = "" if name in UNGOALED else "met" if ratio >= GOAL else "missed"
        goal = f">= {GOAL} {verdict}" if verdict else ""
        table.add_row(
            label,
            *_rates(rates[name]),
            f"{ratio:.2f}",
            goal,
            _cpu_of(cpu[name]),
            _busy_of(busy[name]),
        )
    console.print(table)


def _busy_of(samples: list[float]) -> str:
    return f"{statistics.median(samples):.0%}"


def _cpu_of(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} us"


def _rates(samples: list[float]) -> tuple[str, str]:
    return f"{statistics.median(samples):,.0f}/s", f"{max(samples):,.0f}/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teams", type=int, default=2000)
    parser.add_argument("--events-per-team", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--readers",
        nargs="+",
        choices=READERS,
        default=list(READERS),
        help="which readers to run (the floor always runs: the ratios are to it)",
    )
    parser.add_argument("--profile", default="", help="folder for py-spy stacks of the replay")
    args = parser.parse_args()
    with bench_stack() as stack:
        console.print(f"deciding {args.teams} teams' days ...")
        rows = generate(args.teams, args.events_per_team)
        events = len(rows)
        console.print(f"producing {events:,} records ({sum(len(r[2]) for r in rows) >> 20} MiB)")
        produce(stack.kafka, stack.topics.events, rows)
        del rows
        readers = tuple(name for name in READERS if name == "floor" or name in args.readers)
        rounds = measure(stack, events, args.rounds, readers)
        if args.profile:
            profile(stack, Path(args.profile), [r for r in PROFILED if r in readers])
    show(rounds, events)


PROFILED = ("export", "state")  # the readers that are the replay's own work


def profile(stack: BenchStack, folder: Path, readers: list[str]) -> None:
    """Run each reader once more under py-spy; print where its samples went."""
    target = stack.workdir / "export.jsonl"
    for name in readers:
        path = folder / f"replay-{name}.txt"
        with profiled(path):
            quietly(replay_argv(target)[name])
        target.unlink(missing_ok=True)
        show_profile(path, f"replay {name}")


if __name__ == "__main__":
    main()
