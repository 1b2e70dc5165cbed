"""Heartbeat benchmark: N devices heartbeating every `interval` seconds against a real stack.

Each team has one member whose devices all heartbeat, each on its own phase of the interval,
with `Prefer: wait=10`, so each answer is its outcome: the lease refreshed. Figures:
- events written by heartbeats besides real changes (goal 0): a device's first heartbeat is a
  change (it comes online), every later one should write nothing;
- heartbeat p99 to lease refresh (goal under 100 ms), beside a bare Kafka round trip;
- SSE frames on each team's live stream while the devices beat (goal: only the changes);
- a silenced device (one per team, halfway through) offline within TTL + 1 s of its last
  heartbeat's answer, seen on the live stream.

    .venv/bin/python -m bench.heartbeats [--devices 10000] [--teams 50] [--interval 10]
        [--seconds 180] [--ttl 30]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import orjson

from bench.harness import Report, Row, bench_stack, console, kafka_round_trips, sign_up, summary
from schemas.clock import format_time
from streams.decider import PRESENCE_TIMER_ACTOR
from streams.event_log import KafkaEventLog

P99_GOAL_MS = 100.0


@dataclass
class Team:
    token: str
    user_id: str
    team_id: str
    devices: list[str]
    silenced: str  # the device that stops halfway
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # after the snapshot
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)  # steady heartbeats, ms
    first_ids: set[str] = field(default_factory=set)  # first heartbeat of each device
    steady_ids: set[str] = field(default_factory=set)
    last_sent: dict[str, float] = field(default_factory=dict)  # silenced device -> time
    beating_until: float = 0.0  # perf_counter when the devices stop (the run's end)
    beating_until_wall: str = ""  # the same, as the log's time
    errors: int = 0


async def listen(session: aiohttp.ClientSession, queries: str, team: Team) -> None:
    """Note each SSE frame after the snapshot, with its arrival time."""
    headers = {"Authorization": f"Bearer {team.token}", "Accept": "text/event-stream"}
    url = f"{queries}/v1/teams/{team.team_id}/live"
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout()) as response:
        response.raise_for_status()
        kind = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "snapshot":
                team.ready.set()
            elif line.startswith("data: "):
                team.frames.append((time.perf_counter(), orjson.loads(line[6:])))


async def beat(
    http: httpx.AsyncClient, team: Team, device: str, run: Run, ids: set[str]
) -> float | None:
    """One heartbeat, answered once decided; its latency in ms (None if not accepted)."""
    started = time.perf_counter()
    answer = await http.post(
        f"/v1/teams/{team.team_id}/presence/heartbeat",
        json={"device_id": device},
        headers={"Authorization": f"Bearer {team.token}", "Prefer": "wait=10"},
    )
    took = (time.perf_counter() - started) * 1000
    if answer.status_code != 200 or answer.json()["status"] != "accepted":
        run.errors += 1
        return None
    ids.add(answer.json()["command_id"])
    if device == team.silenced:  # its lease runs from when it was received: just after this
        run.last_sent[device] = started
    return took


async def device_loop(
    http: httpx.AsyncClient, team: Team, device: str, phase: float, args: Any, run: Run
) -> None:
    start = time.perf_counter()
    stop_at = start + args.seconds / 2 if device == team.silenced else start + args.seconds
    await asyncio.sleep(phase)
    while time.perf_counter() < stop_at:
        took = await beat(http, team, device, run, run.steady_ids)
        if took is not None:
            run.latencies.append(took)
        await asyncio.sleep(max(0.0, args.interval - took / 1000 if took else args.interval))


async def drive(commands: str, queries: str, teams: list[Team], args: Any) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=args.connections)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        httpx.AsyncClient(base_url=commands, timeout=30, limits=limits) as http,
    ):
        listeners = [asyncio.create_task(listen(session, queries, t)) for t in teams]
        for team in teams:
            await asyncio.wait_for(team.ready.wait(), 60)
        console.print("first heartbeats (devices come online) ...")
        for team in teams:  # a change each: recorded, on the live stream
            await asyncio.gather(*(beat(http, team, d, run, run.first_ids) for d in team.devices))
        await asyncio.sleep(2.0)
        for team in teams:
            team.frames.clear()
        count = sum(len(t.devices) for t in teams)
        console.print(f"{count} devices heartbeating every {args.interval}s for {args.seconds}s")
        run.beating_until = time.perf_counter() + args.seconds
        run.beating_until_wall = format_time(datetime.now(UTC) + timedelta(seconds=args.seconds))
        loops, index = [], 0
        for team in teams:
            for device in team.devices:
                phase = args.interval * index / count
                loops.append(device_loop(http, team, device, phase, args, run))
                index += 1
        await asyncio.gather(*loops)
        await asyncio.sleep(args.ttl + 3)  # the last silenced devices' expiry
        for task in listeners:
            task.cancel()
    return run


def offline_after(team: Team, run: Run) -> float | None:
    """Seconds from the silenced device's last heartbeat to the frame showing it offline."""
    for arrived, member in team.frames:
        for device in member.get("devices", []):
            if device["device_id"] == team.silenced and device["status"] == "offline":
                return arrived - run.last_sent[team.silenced]
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--ttl", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=200)
    args = parser.parse_args()
    with bench_stack() as stack:
        stack.start("worker", env={"CHORUS_PRESENCE_TTL": str(args.ttl)})
        commands = stack.start("commands")
        queries = stack.start("queries")
        floor = kafka_round_trips(stack.kafka, 200)
        per_team = max(2, args.devices // args.teams)
        teams = []
        for _ in range(args.teams):
            token, user_id, team_id = sign_up(commands)
            devices = [f"d{i}" for i in range(per_team)]
            teams.append(Team(token, user_id, team_id, devices, silenced=devices[0]))
        run = asyncio.run(drive(commands, queries, teams, args))
        log = KafkaEventLog(stack.kafka, stack.topics.events)
        records = [r for p in range(stack.partitions) for _, r in log.read(p)]
        log.close()
    by_steady = [r for r in records if r["causation_id"] in run.steady_ids]
    by_first = [r for r in records if r["causation_id"] in run.first_ids]
    # While the devices beat: at the end every device stops, and goes offline as it should.
    by_timer = [
        r
        for r in records
        if r["actor"] == PRESENCE_TIMER_ACTOR and r["occurred_at"] < run.beating_until_wall
    ]
    frames = sum(1 for t in teams for arrived, _ in t.frames if arrived < run.beating_until)
    expiries = [offline_after(t, run) for t in teams]
    report = Report("heartbeats")
    report.rows.append(
        Row("heartbeat -> lease refreshed", *summary(run.latencies), "bare Kafka", *summary(floor))
    )
    report.show()
    console.print(f"devices: {per_team * len(teams)} in {len(teams)} teams")
    console.print(f"steady heartbeats answered: {len(run.latencies)}, errors: {run.errors}")
    console.print(f"heartbeat p99 {summary(run.latencies)[1]:.1f} ms (goal < {P99_GOAL_MS:.0f} ms)")
    console.print(f"events by first heartbeats (devices online): {len(by_first)}")
    console.print(
        f"events by steady heartbeats (goal 0): {len(by_steady)}; expiries by the timer: "
        f"{len(by_timer)} (goal: {len(teams)}, the silenced devices; more means heartbeats "
        "answered later than the TTL, and each such device's next heartbeat is a real change)"
    )
    console.print(
        f"SSE frames while beating: {frames} (changes: {len(teams)} silenced devices going offline)"
    )
    seen = [e for e in expiries if e is not None]
    worst = max(seen, default=float("nan"))
    console.print(
        f"silenced device offline after its last heartbeat: max {worst:.2f}s"
        f" over {len(seen)}/{len(teams)} (goal <= TTL + 1 = {args.ttl + 1:.0f}s)"
    )


if __name__ == "__main__":
    main()
