"""Command benchmark: accepted commands per second over HTTP, and command-to-decided latency.

Each beside its floor measured in the same run: a no-op endpoint on the same server
(`/healthz`, through the same middleware) for throughput, and a bare confluent-kafka
produce-then-consume round trip for latency. Over the throughput run (wrk drives both sides,
60 s each by default) it also reports the CPU milliseconds per decided command summed over every
process of the stack (commands, worker, queries, the Kafka JVM, PostgreSQL with its backends),
and whether decisions kept up: the lag (accepted - decided) sampled each second must not grow,
and every command must be decided within 1 s of the run's end. The accepted rate counts the
answers 202 (the service's own count); past its backlog of undecided commands the service
answers 503 `overloaded` instead (`commands.backlog`), and how many it refused is printed.

    .venv/bin/python -m bench.commands [--seconds 60] [--connections 32] [--samples 300]
                                       [--profile DIR]

With `--profile DIR`, wrk runs once more (20 s, not counted) while py-spy records the worker
and the commands service (collapsed stacks in DIR), and the functions their samples were in are
printed: where a command's CPU goes in the stack's two busiest processes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
from rich.table import Table

from bench.harness import (
    Report,
    Row,
    bench_stack,
    console,
    kafka_round_trips,
    sign_up,
    summary,
    wrk,
    wrk_rate,
)
from bench.proc import busy_share, machine_ticks
from bench.profile import profiled_children
from bench.profile import show as show_profile
from bench.stackcpu import CpuMeter, DecisionLag, stack_processes
from config.settings import Settings
from replay.parallel import cores


def decided_latencies(base_url: str, token: str, team_id: str, samples: int) -> list[float]:
    """POST a presence command with `Prefer: wait=10` and time the decided answer, one by one."""
    timings = []
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=10"}
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(samples + 20):
            body = {"status": ("available", "busy", "away")[index % 3], "device_id": "bench"}
            started = time.perf_counter()
            answer = client.post(f"/v1/teams/{team_id}/presence", json=body, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise RuntimeError(f"not decided: {answer.status_code} {answer.text}")
            if index >= 20:  # the first ones warm connections and code paths
                timings.append(elapsed)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--samples", type=int, default=300, help="latency samples")
    parser.add_argument("--profile", default="", help="folder for py-spy stacks of the stack")
    args = parser.parse_args()
    report = Report("commands")
    with bench_stack() as stack:
        worker = stack.start("worker")
        commands = stack.start("commands")
        stack.start("queries")  # idle here, but part of the stack whose CPU is counted
        token, _, team_id = sign_up(commands)
        console.print("measuring the bare Kafka round trip ...")
        floor = kafka_round_trips(stack.kafka, args.samples)
        console.print("measuring command-to-decided latency ...")
        decided = decided_latencies(commands, token, team_id, args.samples)
        report.rows.append(
            Row(
                "command accepted->decided (HTTP, Prefer: wait)",
                *summary(decided),
                "bare Kafka produce->consume",
                *summary(floor),
            )
        )
        console.print(f"measuring throughput with wrk, {args.seconds} s each ...")
        floor_rate = wrk_rate(f"{commands}/healthz", args.seconds, args.connections)
        script = stack.workdir / "presence.lua"
        body = json.dumps({"status": "busy", "device_id": "wrk"})
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{body}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
        meter = CpuMeter(stack_processes(stack))
        lag = DecisionLag(commands, worker)
        lag.start()
        meter.start()
        ticks, metered_from = machine_ticks(), time.monotonic()
        accepted_before, started = lag.accepted(), time.monotonic()
        run = wrk(f"{commands}/v1/teams/{team_id}/presence", args.seconds, args.connections, script)
        # Accepted (202), not answered: past its backlog the service sheds load with 503s.
        rate = (lag.accepted() - accepted_before) / (time.monotonic() - started)
        lag.stop()
        drain = lag.drain_seconds()
        meter.stop()
        machine = (busy_share(ticks, machine_ticks()), time.monotonic() - metered_from)
        undecided = lag.undecided()
        decided_count = lag.decided() - lag.decided_at_start
        report.rates.append(("accepted commands (202)", rate, "no-op /healthz", floor_rate))
        report.show()
        console.print(
            f"answered {run.rate:,.0f}/s; refused (503 overloaded: the deciders were a backlog "
            f"behind) {run.errors:,}, {run.errors / max(run.rate * args.seconds, 1):.0%} of the "
            "answers"
        )
        show_keeping_up(lag, drain, decided_count, undecided)
        show_cpu(meter, decided_count, machine, shared=bool(stack_shared()))
        if args.profile:
            console.print("wrk once more (20 s, not counted) under py-spy ...")
            with profiled_children(stack, ("worker", "commands"), Path(args.profile)) as paths:
                wrk(f"{commands}/v1/teams/{team_id}/presence", 20, args.connections, script)
            for name, path in paths.items():
                show_profile(path, f"{name} (wrk, accepted commands)")


def show_keeping_up(lag: DecisionLag, drain: float, decided: float, undecided: float) -> None:
    lags = [value for _, value in lag.samples]
    after = (
        f"{drain:.2f} s after the end ({'within' if drain <= 1.0 else 'NOT within'} 1 s)"
        if drain != float("inf")
        else f"NOT: {undecided:.0f} still undecided 30 s after the end"
    )
    console.print(
        f"decisions: {decided:.0f} decided; lag (accepted - decided) peak "
        f"{max(lags, default=0):.0f}"
        f", at the end {lags[-1] if lags else 0:.0f}, "
        f"{'bounded' if lag.bounded() else 'GROWING'} over the run; every command decided: "
        f"{after}"
    )


def show_cpu(meter: CpuMeter, decided: float, machine: tuple[float, float], shared: bool) -> None:
    table = Table(title="CPU per decided command, over the throughput run and its drain")
    for column in ("process", "CPU s", "CPU ms per decided command"):
        table.add_column(column, justify="left" if column == "process" else "right")
    for name, seconds in meter.spent.items():
        table.add_row(name, f"{seconds:.1f}", f"{seconds * 1000 / max(decided, 1):.3f}")
    total = sum(meter.spent.values())
    per_command = total / max(decided, 1)  # CPU seconds
    table.add_row("all", f"{total:.1f}", f"{per_command * 1000:.3f}")
    console.print(table)
    busy, seconds = machine
    console.print(
        f"over those {seconds:.0f} s the stack used {total / seconds:.2f} cores, and the machine "
        f"was {busy:.0%} busy ({cores()} cores): at {per_command * 1000:.3f} ms a command its "
        f"cores decide at most {cores() / max(per_command, 1e-9):,.0f} commands a second"
    )
    if shared:
        console.print(
            "(Kafka and PostgreSQL are shared (CHORUS_KAFKA / CHORUS_DATABASE_URL): their CPU "
            "includes whatever else uses them)"
        )


def stack_shared() -> bool:
    settings = Settings.from_env()
    return settings.kafka_explicit or settings.database_explicit


if __name__ == "__main__":
    main()
