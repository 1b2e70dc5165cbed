"""Heartbeat benchmark: N devices heartbeating every `interval` seconds against a real stack.

Each team has `--members` members (its owner included; by default one device each, so the
default run is 50 teams x 200 members x 1 device), the layout of the issue: a 200-member team
heartbeating every 10 s. Each device heartbeats with its member's token on its own phase of the
interval, with `Prefer: wait=10`, so each answer is its outcome: the lease refreshed. The owners
sign up over HTTP; the other members' accounts are seeded in the database with minted tokens
(bench/heartbeat_teams.py): sign-up costs two argon2 hashes and is not what this measures.
Every device's first heartbeat (it comes online: a change) goes first, all at once; the devices
then beat on their phases (so no lease runs out) until that wave has settled, every device online
in its team's presence read model and live stream (bench/heartbeat_rounds.py), and only then do
the steady run and its counts start. The load runs in `--processes` client processes
(bench/heartbeat_load.py). Figures:
- how long the first-heard wave took to be answered and to settle;
- heartbeats accepted per second beside the rate offered (devices / interval);
- events written by heartbeats besides real changes (goal 0): a device's first heartbeat is a
  change (it comes online), every later one should write nothing;
- heartbeat p99 to lease refresh (goal under 100 ms), beside a bare Kafka round trip;
- SSE frames on each team's live stream while the devices beat (goal: only the changes);
- a silenced device (one per team, halfway through) offline within TTL + 1 s of its last
  heartbeat's answer, seen on the live stream;
- CPU seconds per second of each process of the stack and of the load over the steady run
  (and `--profile DIR`: py-spy stacks of the worker and the services).

    .venv/bin/python -m bench.heartbeats [--devices 10000] [--teams 50] [--members N]
        [--interval 10] [--seconds 180] [--ttl 30] [--processes 2] [--profile DIR]
        [--direct | --no-wait]
        [--settle-timeout 600]

With --direct the heartbeats are appended to the commands topic (as the commands service
appends them, the member's user id as the actor) and timed to their outcome's NOTIFY: the
worker's part of the path alone. With --no-wait they go over HTTP without `Prefer: wait`
(answered 202 once appended, as a client that does not wait for its heartbeats sends them) and
are timed from their send to their outcome's NOTIFY: the whole path, without a request held
open per heartbeat.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import make_url

from bench.harness import (
    BenchStack,
    Report,
    Row,
    bench_stack,
    console,
    kafka_round_trips,
    summary,
)
from bench.heartbeat_load import LoadResult
from bench.heartbeat_rounds import Load, Wave, first_wave, load_of, spread
from bench.heartbeat_teams import Layout, Team, build_teams, devices_of, layout, listen
from bench.proc import cpu_seconds
from schemas.clock import format_time
from streams.event_log import KafkaEventLog
from streams.presence_timer import PRESENCE_TIMER_ACTOR

P99_GOAL_MS = 100.0


@dataclass
class Run:
    wave: Wave  # the first-heard wave, before the steady run
    load: LoadResult  # the steady heartbeats of every load process, merged
    started: float  # monotonic: the steady heartbeats' schedule starts
    beating_until: float  # monotonic: the devices stop (the run's end)
    started_wall: str  # `started`, as the log's time
    beating_until_wall: str  # `beating_until`, as the log's time
    cpu: dict[str, float]  # process -> CPU seconds over the steady run


async def steady(load: Load, teams: list[Team], args: Any, start_at: float) -> LoadResult:
    """Every device heartbeating on its phase for the run (the silenced ones half of it)."""
    devices = devices_of(teams)
    return await load.run(devices, spread(len(devices), args.interval), start_at, args.seconds)


async def drive(stack: BenchStack, urls: dict[str, str], teams: list[Team], args: Any) -> Run:
    commands, queries = urls["commands"], urls["queries"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        listeners = [asyncio.create_task(listen(session, queries, t)) for t in teams]
        for team in teams:
            await asyncio.wait_for(team.ready.wait(), 120)
        with load_of(commands, args) as load:
            wave = await first_wave(session, queries, load, teams, args)
            console.print(
                f"the first-heard wave settled {wave.settled:.1f}s after it began "
                f"({wave.rounds} rounds)"
            )
            for team in teams:
                team.frames.clear()
            started = wave.next_round
            console.print(
                f"{sum(t.device_count for t in teams)} devices heartbeating every "
                f"{args.interval}s for {args.seconds}s"
                + ("" if args.direct else f" from {args.processes} processes")
            )
            if args.direct:
                console.print("(appended to the commands topic: the commands service is bypassed)")
            wall = datetime.now(UTC) + timedelta(seconds=started - time.monotonic())
            ahead = started - time.monotonic() + args.seconds
            cpu_before = _cpu(stack)
            profilers = _profile(stack, args, ahead)
            result = await steady(load, teams, args, started)
            cpu = {name: _cpu(stack)[name] - before for name, before in cpu_before.items()}
        if not args.direct:
            cpu["load processes"] = result.cpu
        for profiler in profilers:
            profiler.wait()
        await asyncio.sleep(args.ttl + 3)  # the last silenced devices' expiry
        for task in listeners:
            task.cancel()
    until = started + args.seconds
    ending = wall + timedelta(seconds=args.seconds)
    return Run(wave, result, started, until, format_time(wall), format_time(ending), cpu)


def _cpu(stack: BenchStack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack (broker and database if ours)."""
    found = {
        f"{child.name}-{n}": cpu_seconds(child.process.pid)
        for n, child in enumerate(stack.children)
        if child.process is not None
    }
    # This process (with --direct, the load too); the load processes report their own.
    client = resource.getrusage(resource.RUSAGE_SELF)
    found["this client"] = client.ru_utime + client.ru_stime
    return found


def _profile(stack: BenchStack, args: Any, seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy over the steady run, if asked for: one file of collapsed stacks per service process
    (speedscope or flamegraph.pl draw them)."""
    if not args.profile:
        return []
    folder = Path(args.profile)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking"),
                *("-r", "50", "-d", str(int(seconds)), "-f", "raw", "-p", str(child.process.pid)),
                *("-o", str(folder / f"{child.name}-{n}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, child in enumerate(stack.children)
        if child.process is not None
    ]


def offline_after(team: Team, run: Run) -> float | None:
    """Seconds from the silenced device's last heartbeat to the frame showing it offline."""
    last = run.load.last_sent.get(team.team_id)
    user_id, device_id = team.silenced
    for arrived, member in team.frames:
        if member.get("user_id") != user_id:
            continue
        for device in member.get("devices", []):
            if device["device_id"] == device_id and device["status"] == "offline":
                return None if last is None else arrived - last
    return None


def report(args: Any, teams: list[Team], run: Run, records: list[Any], floor: list[float]) -> None:
    steady_ids = set(run.load.accepted_ids)
    by_steady = [r for r in records if r["causation_id"] in steady_ids]
    timer = [r for r in records if r["actor"] == PRESENCE_TIMER_ACTOR]
    # Heartbeats are the only commands of the run: any other event is one's, by its time received
    # (answered or not: a 503 after the append still has its effect).
    beats = [r for r in records if r["actor"] != PRESENCE_TIMER_ACTOR]
    by_wave = [r for r in beats if r["occurred_at"] < run.started_wall]
    by_steady_time = [r for r in beats if r["occurred_at"] >= run.started_wall]
    # While the devices beat: at the end every device stops, and goes offline as it should.
    by_timer = [r for r in timer if run.started_wall <= r["occurred_at"] < run.beating_until_wall]
    by_timer_in_wave = [r for r in timer if r["occurred_at"] < run.started_wall]
    frames = sum(1 for t in teams for arrived, _ in t.frames if arrived < run.beating_until)
    expiries = [offline_after(t, run) for t in teams]
    devices = sum(t.device_count for t in teams)
    table = Report("heartbeats")
    table.rows.append(
        Row(
            "heartbeat -> lease refreshed",
            *summary(run.load.latencies),
            "bare Kafka",
            *summary(floor),
        )
    )
    if run.load.answered:  # --no-wait: the commands service's share, send -> 202 (appended)
        table.rows.append(
            Row(
                "heartbeat -> 202 (appended)",
                *summary(run.load.answered),
                "bare Kafka",
                *summary(floor),
            )
        )
    offered = devices / args.interval
    table.rates.append(
        ("heartbeats accepted", len(run.load.latencies) / args.seconds, "offered", offered)
    )
    table.show()
    shape: Layout = args.layout
    console.print(
        f"devices: {devices} = {shape.teams} teams x {shape.members} members (owner included) x "
        f"{shape.devices} devices; load processes: {args.processes}"
    )
    console.print(f"live streams opened again (refused or cut): {sum(t.reconnects for t in teams)}")
    wave = run.wave
    console.print(
        f"first-heard wave: {wave.rounds} rounds (the first all at once), heartbeats accepted: "
        f"{len(wave.result.accepted_ids)}, errors: {wave.result.errors}; first round answered "
        f"{wave.decided:.1f}s, every device online in the read model and on the live streams "
        f"{wave.settled:.1f}s after its start"
    )
    console.print(
        f"events by the wave's heartbeats: {len(by_wave)} (devices coming online: {devices}; "
        f"more are devices back after an expiry); expiries by the timer meanwhile: "
        f"{len(by_timer_in_wave)}"
    )
    console.print(
        f"steady heartbeats sent: {run.load.sent}, accepted: {len(run.load.latencies)}, "
        f"errors: {run.load.errors}, sent over one interval late: {run.load.late}"
    )
    console.print(
        f"heartbeat p99 {summary(run.load.latencies)[1]:.1f} ms (goal < {P99_GOAL_MS:.0f} ms)"
    )
    console.print(
        f"events by steady heartbeats (goal 0): {len(by_steady_time)} (of those answered "
        f"accepted: {len(by_steady)}); expiries by the timer: "
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
    console.print("CPU over the steady run (cores busy on average):")
    for name, seconds in run.cpu.items():
        console.print(f"  {name}: {seconds:.1f} s ({seconds / args.seconds:.2f} cores)")
    console.print(f"load average now: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument(
        "--members",
        type=int,
        default=None,
        help="members per team, owner included (default devices / teams: one device each)",
    )
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--ttl", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--processes", type=int, default=2, help="load processes")
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=600.0,
        help="seconds the first-heard wave may take to show every device online",
    )
    parser.add_argument("--profile", default="", help="folder for py-spy stacks")
    parser.add_argument(
        "--direct",
        action="store_true",
        help="append heartbeats to the commands topic (the worker alone, timed to the outcome)",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="over HTTP, heartbeats without `Prefer: wait` (202 once appended, as a client that "
        "does not wait sends them), each timed from its send to its outcome's NOTIFY",
    )
    args = parser.parse_args()
    args.layout = layout(args.devices, args.teams, args.members)
    with bench_stack() as stack:
        stack.start("worker", env={"CHORUS_PRESENCE_TTL": str(args.ttl)})
        urls = {"commands": stack.start("commands"), "queries": stack.start("queries")}
        floor = kafka_round_trips(stack.kafka, 200)
        console.print(f"teams: {args.layout} (accounts besides the owners seeded) ...")
        teams = build_teams(urls["commands"], stack.database_url, stack.secret, args.layout)
        dsn = make_url(stack.database_url).set(drivername="postgresql")
        dsn_text = dsn.render_as_string(hide_password=False)
        # The database a load process listens to for outcomes, or None (it waits for them).
        args.no_wait = dsn_text if args.no_wait else None
        if args.direct:  # (bootstrap, topic, dsn) for DirectSpec
            args.direct = (stack.kafka, stack.topics.commands, dsn_text)
        run = asyncio.run(drive(stack, urls, teams, args))
        log = KafkaEventLog(stack.kafka, stack.topics.events)
        records = [r for p in range(stack.partitions) for _, r in log.read(p)]
        log.close()
    report(args, teams, run, records, floor)


if __name__ == "__main__":
    main()
