"""Live-query benchmark: command accepted (202) -> SSE event received, with 1, 100, 1,000 and
10,000 connected clients, beside the bare Kafka produce->consume round trip plus the fan-out
floor (bench/sse_floor.py: a minimal uvicorn SSE broadcaster, one pre-encoded frame written to
every connection) read by the same readers in the same run; and the queries process's memory
at each count. Before that, command sent -> read model committed (its NOTIFY received), split
into its stages by the records' timestamps (bench/stages.py), and the projector's time per
event. The readers are bare asyncio protocols spread over up to four processes
(bench/sse_readers.py), so that reading costs the server's cores as little as it can.

    .venv/bin/python -m bench.live [--samples 100] [--clients 1,100,1000,10000] [--readers 0]
                                   [--profile DIR]

With `--profile DIR`, the changes run once more with 1,000 clients (not counted) while py-spy
records the worker and the queries service (collapsed stacks in DIR), and the functions their
samples were in are printed: where a change's way to the clients spends its CPU.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import (
    PARTITIONS,
    Report,
    Row,
    bench_stack,
    console,
    kafka_round_trips,
    sign_up,
    summary,
)
from bench.proc import cpu_seconds, rss_mib
from bench.profile import profiled_children
from bench.profile import show as show_profile
from bench.sse_readers import ReaderPool
from bench.stages import Sample, stages
from devstack.server import HOST, free_port
from streams.readmodels.store import CHANNEL

WARMUP = 30  # the first changes after start-up pay for partition loads and connections
# Reader processes: at most this many connections each, and no more processes than cores allow.
PER_READER = 2500
PROFILED_CLIENTS = 1000  # the count whose goal sits at the line
PROFILED = ("worker", "queries")  # the processes a change's way goes through after its append


def interval(clients: int) -> float:
    """Seconds between changes: one at a time, further apart for more clients (each change is
    `clients` frames), the same pace for Chorus and its floor."""
    return max(0.05, clients / 20_000)


def latencies_of(
    arrivals: dict[int, list[float]], sent: dict[int, float], clients: int
) -> list[float]:
    """Milliseconds from each event's `sent` time to its arrival at each client; every client
    must have received every event."""
    latencies = [
        (arrived - started) * 1000
        for event_id, started in sent.items()
        for arrived in arrivals.get(event_id, [])
    ]
    missing = clients * len(sent) - len(latencies)
    if missing:
        raise RuntimeError(f"{missing} events never reached their client")
    return latencies


def chorus_fanout(
    readers: ReaderPool,
    queries: str,
    commands: str,
    token: str,
    team_id: str,
    clients: int,
    samples: int,
    pid: int,
) -> tuple[list[float], float]:
    """Command accepted (202) -> SSE event received, over all clients and samples (ms), and the
    queries process's RSS (MiB) while every client is connected."""
    address = urlsplit(queries)
    readers.open(
        address.hostname or "127.0.0.1",
        address.port or 80,
        f"/v1/teams/{team_id}/live",
        [f"Authorization: Bearer {token}"],
        clients,
    )
    accepted: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=commands, timeout=30) as http:
        for index in range(samples + WARMUP):
            body = {"status": ("available", "busy", "away")[index % 3], "device_id": "bench"}
            answer = http.post(f"/v1/teams/{team_id}/presence", json=body, headers=headers)
            if index >= WARMUP:  # the first changes warm caches and connections
                accepted[answer.json()["command_id"]] = time.monotonic()
            time.sleep(interval(clients))
        seqs = {c: _seq(http, c, headers) for c in accepted}
    readers.wait_for(max(seqs.values()), clients)
    memory = rss_mib(pid)
    arrivals = readers.collect()
    readers.close()
    return latencies_of(arrivals, {seqs[c]: t for c, t in accepted.items()}, clients), memory


def floor_fanout(readers: ReaderPool, floor: str, clients: int, samples: int) -> list[float]:
    """The bare broadcaster: emit answered -> SSE event received, over all clients (ms)."""
    address = urlsplit(floor)
    readers.open(address.hostname or "127.0.0.1", address.port or 80, "/live", [], clients)
    sent: dict[int, float] = {}
    with httpx.Client(base_url=floor, timeout=30) as http:
        for event_id in range(1, samples + WARMUP + 1):
            http.post("/emit", params={"id": event_id}).raise_for_status()
            if event_id > WARMUP:
                sent[event_id] = time.monotonic()
            time.sleep(interval(clients))
    readers.wait_for(max(sent), clients)
    arrivals = readers.collect()
    readers.close()
    return latencies_of(arrivals, sent, clients)


@contextmanager
def floor_server(workdir: Path) -> Iterator[tuple[str, int]]:
    """The minimal SSE broadcaster (bench/sse_floor.py) under uvicorn, on a free port: its URL
    and process id."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bench.sse_floor:app", "--http", "httptools"]
    argv += ["--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with (workdir / "sse-floor.log").open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(f"{url}/emit", params={"id": 0}, timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the SSE floor did not start") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


def raise_file_limit(clients: int) -> None:
    """Each client is a socket in a reader and in the server: lift the soft limit to the hard
    one (children inherit it), and say so when even that is too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < clients + 1000:
        raise RuntimeError(f"open files limited to {hard}: too few for {clients} clients")


def committed_latencies(
    database_url: str, commands: str, token: str, team_id: str, samples: int
) -> list[Sample]:
    """Command sent -> its change committed to the read model (the projector's NOTIFY), one
    change at a time."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    timings = []
    headers = {"Authorization": f"Bearer {token}"}
    with (
        psycopg.connect(url, autocommit=True) as listener,
        httpx.Client(base_url=commands, timeout=30) as http,
    ):
        listener.execute(f"LISTEN {CHANNEL}")
        for index in range(samples + WARMUP):
            body = {"status": ("available", "busy", "away")[index % 3], "device_id": "bench"}
            sent = time.time() * 1000
            answer = http.post(f"/v1/teams/{team_id}/presence", json=body, headers=headers)
            answer.raise_for_status()
            _notified(listener, team_id)
            if index >= WARMUP:
                timings.append(Sample(answer.json()["command_id"], sent, time.time() * 1000))
    return timings


def _notified(listener: psycopg.Connection[tuple[object, ...]], team_id: str) -> None:
    # The channel is shared by every team (and every stack on this database): wait for ours.
    # The first change after start-up waits for the worker's partitions to be assigned.
    for note in listener.notifies(timeout=60):
        if note.payload.startswith(f"{team_id}:"):
            return
    raise RuntimeError("a change was never committed to the read model")


def projector_seconds_per_event(worker: str) -> float:
    """The worker's mean time to project, write and commit one event (its histogram)."""
    text = httpx.get(f"{worker}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "chorus_project_seconds":
            totals = {s.name: s.value for s in family.samples}
            return totals["chorus_project_seconds_sum"] / totals["chorus_project_seconds_count"]
    raise RuntimeError("the worker publishes no chorus_project_seconds")


def _seq(http: httpx.Client, command_id: str, headers: dict[str, str]) -> int:
    for _ in range(200):
        answer = http.get(f"/v1/commands/{command_id}", headers=headers)
        if answer.status_code == 200 and answer.json()["status"] != "pending":
            return int(answer.json()["position"])
        time.sleep(0.05)
    raise RuntimeError("a command was never decided")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="changes per client count")
    parser.add_argument("--clients", default="1,100,1000,10000", help="comma-separated counts")
    parser.add_argument("--readers", type=int, default=0, help="reader processes (0: by count)")
    parser.add_argument("--profile", default="", help="folder for py-spy stacks of the stack")
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    raise_file_limit(max(counts))
    report = Report("live queries")
    memory: dict[int, float] = {}
    cpu: dict[int, tuple[float, float]] = {}  # clients -> (queries, floor) CPU ms per change
    paths: dict[str, Path] = {}  # process -> its py-spy stacks (with --profile)
    with bench_stack() as stack, floor_server(stack.workdir) as (floor_url, floor_pid):
        worker = stack.start("worker")
        commands = stack.start("commands")
        queries = stack.start("queries")
        queries_pid = stack.children[-1].process.pid  # type: ignore[union-attr]
        token, _, team_id = sign_up(commands)
        kafka = kafka_round_trips(stack.kafka, 300)
        console.print("measuring command sent -> read model committed ...")
        committed = committed_latencies(stack.database_url, commands, token, team_id, args.samples)
        report.rows.append(
            Row(
                "sent->read model committed (NOTIFY)",
                *summary([c.notified_ms - c.sent_ms for c in committed]),
                "bare Kafka produce->consume",
                *summary(kafka),
            )
        )
        topics = stack.topics
        way = stages(stack.kafka, topics.commands, topics.events, PARTITIONS, team_id, committed)
        for stage, spent in way.items():
            if spent:
                row = Row(f"  {stage}", *summary(spent), "bare Kafka", *summary(kafka))
                report.rows.append(row)
        per_event = projector_seconds_per_event(worker) * 1000
        for clients in counts:
            processes = args.readers or max(1, min(4, -(-clients // PER_READER)))
            console.print(f"measuring with {clients} clients ({processes} reader processes) ...")
            with ReaderPool(processes) as readers:
                floor_cpu = cpu_seconds(floor_pid, tree=False)
                fanout = floor_fanout(readers, floor_url, clients, args.samples)
                floor_cpu = cpu_seconds(floor_pid, tree=False) - floor_cpu
                queries_cpu = cpu_seconds(queries_pid, tree=False)
                latencies, memory[clients] = chorus_fanout(
                    readers, queries, commands, token, team_id, clients, args.samples, queries_pid
                )
                queries_cpu = cpu_seconds(queries_pid, tree=False) - queries_cpu
            changes = args.samples + WARMUP
            cpu[clients] = (queries_cpu * 1000 / changes, floor_cpu * 1000 / changes)
            (kafka_p50, kafka_p99), (fanout_p50, fanout_p99) = summary(kafka), summary(fanout)
            report.rows.append(
                Row(
                    f"fan-out floor, {clients} clients",
                    *summary(fanout),
                    "bare Kafka produce->consume",
                    *summary(kafka),
                )
            )
            report.rows.append(
                Row(
                    f"accepted->SSE, {clients} clients",
                    *summary(latencies),
                    "Kafka round trip + fan-out floor",
                    kafka_p50 + fanout_p50,
                    kafka_p99 + fanout_p99,
                )
            )
        if args.profile:
            console.print(f"{PROFILED_CLIENTS} clients once more (not counted) under py-spy ...")
            with (
                ReaderPool(1) as readers,
                profiled_children(stack, PROFILED, Path(args.profile), "live-") as paths,
            ):
                chorus_fanout(
                    readers,
                    queries,
                    commands,
                    token,
                    team_id,
                    PROFILED_CLIENTS,
                    args.samples,
                    queries_pid,
                )
    report.show()
    for name, path in paths.items():
        show_profile(path, f"{name} ({PROFILED_CLIENTS} live clients)")
    console.print(f"projector per event (project + write + commit): {per_event:.2f} ms mean")
    for clients, mib in memory.items():
        console.print(f"queries process memory with {clients} clients: {mib:.0f} MiB RSS")
    for clients, (queries_ms, floor_ms) in cpu.items():
        console.print(
            f"CPU per change with {clients} clients (opening the streams included): "
            f"queries {queries_ms:.1f} ms, fan-out floor {floor_ms:.1f} ms"
        )


if __name__ == "__main__":
    main()
