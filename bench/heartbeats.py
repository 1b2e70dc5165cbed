"""Heartbeat benchmark: N devices heartbeating every `interval` seconds against a real stack.

Each team has `--members` members (its owner included; by default one device each, so the
default run is 50 teams x 200 members x 1 device), the layout of the issue: a 200-member team
heartbeating every 10 s. Each device heartbeats with its member's token on its own phase of the
interval, with `Prefer: wait=10`, so each answer is its outcome: the lease refreshed. The owners
sign up over HTTP; the other members' accounts are seeded in the database with minted tokens
(bench/heartbeat_teams.py): sign-up costs two argon2 hashes and is not what this measures.
Every device's first heartbeat (it comes online: a change) goes first, and the steady phase
starts only once that wave has settled (every device online in each team's presence read model
and live stream). The load runs in `--processes` client processes (bench/heartbeat_load.py).
Figures:
- how long the first-heard wave took to be decided and to settle;
- heartbeats accepted per second beside the rate offered (devices / interval);
- events written by heartbeats besides real changes (goal 0): a device's first heartbeat is a
  change (it comes online), every later one should write nothing;
- heartbeat p99 to lease refresh (goal under 100 ms), beside a bare Kafka round trip;
- SSE frames on each team's live stream while the devices beat (goal: only the changes);
- a silenced device (one per team, halfway through) offline within TTL + 1 s of its last
  heartbeat's answer, seen on the live stream;
- CPU seconds per second of each process of the stack over the run (and `--profile DIR`:
  py-spy stacks of the worker and the services).

    .venv/bin/python -m bench.heartbeats [--devices 10000] [--teams 50] [--members N]
        [--interval 10] [--seconds 180] [--ttl 30] [--processes 2] [--profile DIR] [--direct]
        [--settle-timeout 600]

With --direct the heartbeats are appended to the commands topic (as the commands service
appends them, the member's user id as the actor) and timed to their outcome's NOTIFY: the
worker's part of the path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
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
from bench.heartbeat_load import (
    Device,
    DirectSpec,
    LoadResult,
    LoadSpec,
    run_direct,
    run_load,
)
from bench.heartbeat_load import first_heartbeats as first_over_http
from bench.heartbeat_teams import Layout, Team, build_teams, interleave, layout, listen, settle
from bench.proc import cpu_seconds
from schemas.clock import format_time
from streams.decider import PRESENCE_TIMER_ACTOR
from streams.event_log import KafkaEventLog

P99_GOAL_MS = 100.0
#: The load processes start their schedule this long after they are launched (imports).
LOAD_START_SECONDS = 5.0


@dataclass
class Run:
    load: LoadResult  # the steady heartbeats of every load process, merged
    first_ids: set[str]
    first_errors: dict[str, int]
    first_decided: float  # seconds from the first-heard wave's start to its last outcome
    settled: float  # seconds from the wave's start until every device showed online
    started: float  # monotonic: the steady heartbeats' schedule starts
    beating_until: float  # monotonic: the devices stop (the run's end)
    beating_until_wall: str  # the same, as the log's time
    cpu: dict[str, float]  # process -> CPU seconds over the steady run


def devices_of(teams: list[Team]) -> list[Device]:
    """Every device, with its member's token, one team after another in turn."""
    return interleave(
        [
            [
                Device(t.team_id, m.user_id, m.token, d, silenced=(m.user_id, d) == t.silenced)
                for m in t.members
                for d in m.devices
            ]
            for t in teams
        ]
    )


def merge(results: list[LoadResult]) -> LoadResult:
    merged = LoadResult()
    for each in results:
        merged.latencies += each.latencies
        merged.accepted_ids += each.accepted_ids
        merged.sent += each.sent
        merged.late += each.late
        merged.last_sent.update(each.last_sent)
        for what, count in each.errors.items():
            merged.errors[what] = merged.errors.get(what, 0) + count
    return merged


async def steady(commands: str, teams: list[Team], args: Any) -> tuple[LoadResult, float]:
    """Every device heartbeating on its phase, spread over `args.processes` processes."""
    devices = devices_of(teams)
    phases = [args.interval * index / len(devices) for index in range(len(devices))]
    start_at = time.monotonic() + LOAD_START_SECONDS
    if args.direct:
        bootstrap, topic, dsn = args.direct
        spec = DirectSpec(bootstrap, topic, dsn, devices, start_at, args.interval, args.seconds)
        return await asyncio.to_thread(run_direct, spec, phases), start_at
    shares = [
        (
            LoadSpec(
                commands,
                devices[n :: args.processes],
                start_at,
                args.interval,
                args.seconds,
                max(1, args.connections // args.processes),
            ),
            phases[n :: args.processes],
        )
        for n in range(args.processes)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, run_load, spec, share) for spec, share in shares)
        )
    return merge(list(results)), start_at


async def drive(stack: BenchStack, urls: dict[str, str], teams: list[Team], args: Any) -> Run:
    commands, queries = urls["commands"], urls["queries"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        listeners = [asyncio.create_task(listen(session, queries, t)) for t in teams]
        for team in teams:
            await asyncio.wait_for(team.ready.wait(), 120)
        wave = await first_wave(session, commands, queries, teams, args)
        for team in teams:
            team.frames.clear()
        count = sum(t.device_count for t in teams)
        console.print(
            f"{count} devices heartbeating every {args.interval}s for {args.seconds}s "
            f"from {args.processes} processes"
        )
        if args.direct:
            console.print("(appended to the commands topic: the commands service is bypassed)")
        wall = datetime.now(UTC) + timedelta(seconds=LOAD_START_SECONDS + args.seconds)
        cpu_before = _cpu(stack)
        profilers = _profile(stack, args)
        load, started = await steady(commands, teams, args)
        cpu = {name: _cpu(stack)[name] - before for name, before in cpu_before.items()}
        for profiler in profilers:
            profiler.wait()
        await asyncio.sleep(args.ttl + 3)  # the last silenced devices' expiry
        for task in listeners:
            task.cancel()
    first_ids, first, decided, settled = wave
    return Run(
        load,
        set(first_ids),
        first.errors,
        decided,
        settled,
        started,
        started + args.seconds,
        format_time(wall),
        cpu,
    )


async def first_wave(
    session: aiohttp.ClientSession, commands: str, queries: str, teams: list[Team], args: Any
) -> tuple[list[str], LoadResult, float, float]:
    """Every device's first heartbeat, then the wait until every device shows online:
    (accepted ids, their result, seconds until decided, seconds until settled)."""
    console.print("first heartbeats (devices come online) ...")
    began = time.monotonic()
    first_ids, first = await first_heartbeats(commands, devices_of(teams), args)
    decided = time.monotonic() - began
    console.print(f"decided in {decided:.1f}s; waiting for every device to show online ...")
    await settle(session, queries, teams, args.settle_timeout)
    settled = time.monotonic() - began
    console.print(f"the first-heard wave settled {settled:.1f}s after it began")
    return first_ids, first, decided, settled


async def first_heartbeats(
    commands: str, devices: list[Device], args: Any
) -> tuple[list[str], LoadResult]:
    """Every device's first heartbeat, at once (over HTTP, or appended with --direct)."""
    if not args.direct:
        return await first_over_http(commands, devices, args.connections)
    bootstrap, topic, dsn = args.direct
    spec = DirectSpec(bootstrap, topic, dsn, devices, time.monotonic(), 0.0, 0.0)
    first = await asyncio.to_thread(run_direct, spec, [0.0] * len(devices))
    return first.accepted_ids, first


def _cpu(stack: BenchStack) -> dict[str, float]:
    """CPU seconds so far of each process of the stack (broker and database if ours)."""
    found = {
        f"{child.name}-{n}": cpu_seconds(child.process.pid)
        for n, child in enumerate(stack.children)
        if child.process is not None
    }
    # This process, and its children already waited for (the load processes, once they ended;
    # the stack's processes run on and are counted above).
    client = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    found["this client (and its load processes)"] = sum(u.ru_utime + u.ru_stime for u in client)
    return found


def _profile(stack: BenchStack, args: Any) -> list[subprocess.Popen[bytes]]:
    """py-spy over the steady run, if asked for: one file of collapsed stacks per service process
    (speedscope or flamegraph.pl draw them)."""
    if not args.profile:
        return []
    folder = Path(args.profile)
    folder.mkdir(parents=True, exist_ok=True)
    seconds = str(int(LOAD_START_SECONDS + args.seconds))
    return [
        subprocess.Popen(
            [
                *(str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking"),
                *("-r", "50", "-d", seconds, "-f", "raw", "-p", str(child.process.pid)),
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
    by_first = [r for r in records if r["causation_id"] in run.first_ids]
    # While the devices beat: at the end every device stops, and goes offline as it should.
    by_timer = [
        r
        for r in records
        if r["actor"] == PRESENCE_TIMER_ACTOR and r["occurred_at"] < run.beating_until_wall
    ]
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
    console.print(
        f"first heartbeats accepted: {len(run.first_ids)}/{devices}, errors: {run.first_errors}"
    )
    console.print(
        f"steady heartbeats sent: {run.load.sent}, accepted: {len(run.load.latencies)}, "
        f"errors: {run.load.errors}, sent over one interval late: {run.load.late}"
    )
    console.print(
        f"heartbeat p99 {summary(run.load.latencies)[1]:.1f} ms (goal < {P99_GOAL_MS:.0f} ms)"
    )
    console.print(f"events by first heartbeats (devices online): {len(by_first)}")
    console.print(
        f"first-heard wave: decided {run.first_decided:.1f}s, settled (every device online in "
        f"the read model and on the live streams) {run.settled:.1f}s after its start"
    )
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
    args = parser.parse_args()
    args.layout = layout(args.devices, args.teams, args.members)
    with bench_stack() as stack:
        stack.start("worker", env={"CHORUS_PRESENCE_TTL": str(args.ttl)})
        urls = {"commands": stack.start("commands"), "queries": stack.start("queries")}
        floor = kafka_round_trips(stack.kafka, 200)
        console.print(f"teams: {args.layout} (accounts besides the owners seeded) ...")
        teams = build_teams(urls["commands"], stack.database_url, stack.secret, args.layout)
        if args.direct:  # (bootstrap, topic, dsn) for DirectSpec
            dsn = make_url(stack.database_url).set(drivername="postgresql")
            dsn_text = dsn.render_as_string(hide_password=False)
            args.direct = (stack.kafka, stack.topics.commands, dsn_text)
        run = asyncio.run(drive(stack, urls, teams, args))
        log = KafkaEventLog(stack.kafka, stack.topics.events)
        records = [r for p in range(stack.partitions) for _, r in log.read(p)]
        log.close()
    report(args, teams, run, records, floor)


if __name__ == "__main__":
    main()
