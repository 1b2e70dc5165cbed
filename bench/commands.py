"""Command benchmark: accepted commands per second over HTTP, and command-to-decided latency.

Each beside its floor measured in the same run: a no-op endpoint on the same server
(`/healthz`, through the same middleware) for throughput, and a bare confluent-kafka
produce-then-consume round trip for latency.

    .venv/bin/python -m bench.commands [--seconds 10] [--connections 32] [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from bench.harness import (
    Report,
    Row,
    bench_stack,
    console,
    kafka_round_trips,
    sign_up,
    summary,
    wrk_rate,
)


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
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--samples", type=int, default=300, help="latency samples")
    args = parser.parse_args()
    report = Report("commands")
    with bench_stack() as stack:
        stack.start("worker")
        commands = stack.start("commands")
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
        console.print("measuring throughput with wrk ...")
        floor_rate = wrk_rate(f"{commands}/healthz", args.seconds, args.connections)
        script = stack.workdir / "presence.lua"
        body = json.dumps({"status": "busy", "device_id": "wrk"})
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = '{body}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        )
        rate = wrk_rate(
            f"{commands}/v1/teams/{team_id}/presence", args.seconds, args.connections, script
        )
        report.rates.append(("accepted commands (202)", rate, "no-op /healthz", floor_rate))
    report.show()


if __name__ == "__main__":
    main()
