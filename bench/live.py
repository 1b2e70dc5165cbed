"""Live-query benchmark: command accepted (202) -> SSE event received, with 1, 100 and 1,000
connected clients, and the queries process's memory at 1,000 clients; before that, command sent
-> read model committed (its NOTIFY received) and the projector's time per event. Each latency
beside the bare Kafka produce->consume round trip measured in the same run.

    .venv/bin/python -m bench.live [--samples 100] [--clients 1,100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import aiohttp
import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import Report, Row, bench_stack, console, kafka_round_trips, sign_up, summary
from streams.readmodels.store import CHANNEL

WARMUP = 30  # the first changes after start-up pay for partition loads and connections


class Listener:
    """One SSE client; remembers when each event id arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        self.ready = asyncio.Event()

    async def run(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout()) as response:
            response.raise_for_status()
            async for raw in response.content:
                line = raw.rstrip(b"\n")
                if line.startswith(b"id: "):
                    self.arrivals[int(line[4:])] = time.perf_counter()
                    self.ready.set()


async def measure(
    queries: str, commands: str, token: str, team_id: str, clients: int, samples: int, pid: int
) -> tuple[list[float], float]:
    """Latencies (ms) over all clients and samples, and the queries process's RSS (MiB) while
    every client is connected."""
    url = f"{queries}/v1/teams/{team_id}/live"
    listeners = [Listener() for _ in range(clients)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(listener.run(session, url, token)) for listener in listeners]
        for listener in listeners:
            await asyncio.wait_for(listener.ready.wait(), 60)
        accepted: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=commands, timeout=30) as http:
            headers = {"Authorization": f"Bearer {token}"}
            for index in range(samples + WARMUP):
                body = {"status": ("available", "busy", "away")[index % 3], "device_id": "bench"}
                answer = await http.post(
                    f"/v1/teams/{team_id}/presence", json=body, headers=headers
                )
                if index >= WARMUP:  # the first changes warm caches and connections
                    accepted[answer.json()["command_id"]] = time.perf_counter()
                await asyncio.sleep(0.05)  # one change at a time: this measures latency
            seqs = {c: await _seq(http, c, headers) for c in accepted}
        await asyncio.sleep(1.0)
        memory = rss_mib(pid)
        for task in tasks:
            task.cancel()
    latencies = [
        (listener.arrivals[seqs[c]] - accepted[c]) * 1000
        for listener in listeners
        for c in accepted
        if seqs[c] in listener.arrivals
    ]
    missing = clients * samples - len(latencies)
    if missing:
        raise RuntimeError(f"{missing} events never reached their client")
    return latencies, memory


def committed_latencies(
    database_url: str, commands: str, token: str, team_id: str, samples: int
) -> list[float]:
    """Command sent -> its change committed to the read model (the projector's NOTIFY), in ms,
    one change at a time."""
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
            started = time.perf_counter()
            http.post(
                f"/v1/teams/{team_id}/presence", json=body, headers=headers
            ).raise_for_status()
            _notified(listener, team_id)
            if index >= WARMUP:
                timings.append((time.perf_counter() - started) * 1000)
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


async def _seq(http: httpx.AsyncClient, command_id: str, headers: dict[str, str]) -> int:
    for _ in range(200):
        answer = await http.get(f"/v1/commands/{command_id}", headers=headers)
        if answer.status_code == 200 and answer.json()["status"] != "pending":
            return int(answer.json()["position"])
        await asyncio.sleep(0.05)
    raise RuntimeError("a command was never decided")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="changes per client count")
    parser.add_argument("--clients", default="1,100,1000", help="comma-separated client counts")
    args = parser.parse_args()
    report = Report("live queries")
    with bench_stack() as stack:
        worker = stack.start("worker")
        commands = stack.start("commands")
        queries = stack.start("queries")
        queries_pid = stack.children[-1].process.pid  # type: ignore[union-attr]
        token, _, team_id = sign_up(commands)
        floor = kafka_round_trips(stack.kafka, 300)
        console.print("measuring command sent -> read model committed ...")
        committed = committed_latencies(stack.database_url, commands, token, team_id, args.samples)
        report.rows.append(
            Row(
                "sent->read model committed (NOTIFY)",
                *summary(committed),
                "bare Kafka produce->consume",
                *summary(floor),
            )
        )
        per_event = projector_seconds_per_event(worker) * 1000
        memory = {}
        for clients in (int(c) for c in args.clients.split(",")):
            console.print(f"measuring with {clients} connected clients ...")
            latencies, memory[clients] = asyncio.run(
                measure(queries, commands, token, team_id, clients, args.samples, queries_pid)
            )
            report.rows.append(
                Row(
                    f"accepted->SSE, {clients} clients",
                    *summary(latencies),
                    "bare Kafka produce->consume",
                    *summary(floor),
                )
            )
    report.show()
    console.print(f"projector per event (project + write + commit): {per_event:.2f} ms mean")
    for clients, mib in memory.items():
        console.print(f"queries process memory with {clients} clients: {mib:.0f} MiB RSS")


if __name__ == "__main__":
    main()
