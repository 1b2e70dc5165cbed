"""Media benchmark: join time and click-to-audio beside a bare aiortc connection (the floor), and
mixing capacity beside Janus AudioBridge, all in one run.

- join: `POST /v1/calls/{id}/join` -> first mixed frame decoded at the joining client.
- click to audio: `POST /v1/teams/{id}/calls` -> the starter's first mixed frame.
- floor: a bare aiortc-to-aiortc connection, createOffer -> first decoded frame.
- capacity: N clients in rooms of 5 (one or two talking a tone, the rest silent), in client
  processes of their own; the server's CPU (its process tree, /proc) over a window, and the
  share of 20 ms frames on time at the clients; then the same clients against Janus AudioBridge
  (48 kHz) started by the benchmark.

The Chorus side is the real stack (commands, worker, queries and `chorus media`, which runs one
media process per core unless `--workers` says otherwise), driven through its public API.

    .venv/bin/python -m bench.media [--joins 30] [--sizes 10,30,60] [--workers N] [--skip-janus]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import janus
from bench.harness import bench_stack, console
from bench.media_load import ClientPool, LoadResult, Seat, answer_for
from bench.media_report import CapacityRow, LatencyRow, show
from bench.media_sides import Call, StackSide
from bench.proc import cpu_seconds
from bench.rtc import Peer, encoded_cycle, floor_joins

WARMUP = 3  # joins not counted: the first ones pay for imports, connections and code paths
JANUS_ROOMS = itertools.count(1000)
TONES = (330.0, 550.0)  # Hz: the one or two talkers of each room


@dataclass
class Options:
    workers: int | None
    joins: int
    sizes: list[int]
    room_size: int
    seconds: float
    per_process: int
    bounds: list[float]
    skip_janus: bool


async def _signal(http: httpx.AsyncClient, peer: Peer, url: str, token: str, offer: str) -> float:
    """POST the offer, take the answer, wait for the first decoded frame; its time."""
    await peer.accept(await answer_for(http, Seat("", None, url, token), offer))
    return await peer.first_frame()


async def click_and_join(side: StackSide, samples: int) -> tuple[list[float], list[float]]:
    """Per call: click-to-audio of its starter (user 0), join time of its invitee (user 1), ms."""
    silence = encoded_cycle(None)
    clicks: list[float] = []
    joins: list[float] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for index in range(samples + WARMUP):
            starter, joiner = Peer(silence), Peer(silence)
            call: Call | None = None
            try:
                clicked = time.monotonic()
                started, offer = await asyncio.gather(side.start_call(0, [1]), starter.offer())
                call = started
                url = await asyncio.wait_for(started.offer_url, 15)
                heard = await _signal(http, starter, url, side.token(0), offer)
                joined = time.monotonic()
                _, offer = await asyncio.gather(side.join(started, 1), joiner.offer())
                joiner_heard = await _signal(http, joiner, url, side.token(1), offer)
                if index >= WARMUP:
                    clicks.append((heard - clicked) * 1000)
                    joins.append((joiner_heard - joined) * 1000)
            finally:
                await asyncio.gather(starter.close(), joiner.close())
                if call is not None:
                    await side.end(call)
    return clicks, joins


def layout(size: int, room_size: int) -> list[list[float | None]]:
    """Rooms of `room_size` (the last may be smaller): even rooms one talker, odd rooms two."""
    rooms = []
    for index in range(math.ceil(size / room_size)):
        members = min(room_size, size - index * room_size)
        talkers = list(TONES[: 1 + index % 2])[:members]
        rooms.append([*talkers, *([None] * (members - len(talkers)))])
    return rooms


async def chorus_seats(
    side: StackSide, rooms: list[list[float | None]]
) -> tuple[list[Seat], list[Call]]:
    seats: list[Seat] = []
    calls: list[Call] = []
    user = 0
    for tones in rooms:
        members = list(range(user, user + len(tones)))
        user += len(tones)
        call = await side.start_call(members[0], members[1:])
        calls.append(call)
        for member in members[1:]:
            await side.join(call, member)
        url = await asyncio.wait_for(call.offer_url, 15)
        seats += [
            Seat(f"u{m}", tone, offer_url=url, token=side.token(m))
            for m, tone in zip(members, tones, strict=True)
        ]
    return seats, calls


async def janus_seats(url: str, rooms: list[list[float | None]]) -> list[Seat]:
    seats: list[Seat] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for tones in rooms:
            room = next(JANUS_ROOMS)  # rooms outlive their participants: never reuse an id
            await janus.create_room(http, url, room)
            seats += [
                Seat(f"r{room}-{k}", tone, janus_url=url, janus_room=room)
                for k, tone in enumerate(tones)
            ]
    return seats


async def load(seats: list[Seat], server_pid: int, options: Options) -> tuple[LoadResult, float]:
    """Connect the seats from client processes; (what they measured, server CPU share)."""
    pool = ClientPool(max(1, math.ceil(len(seats) / options.per_process)))
    try:
        errors = await pool.join(seats, options.bounds)
        if errors:
            raise RuntimeError(f"{len(errors)} clients could not join: {errors[:3]}")
        start = time.monotonic() + 2.0  # let every jitter buffer settle
        end = start + options.seconds
        pool.open_window(start, end)
        await asyncio.sleep(start - time.monotonic())
        cpu_start = cpu_seconds(server_pid)
        await asyncio.sleep(end - time.monotonic())
        server_cpu = (cpu_seconds(server_pid) - cpu_start) / (end - start)
        return await pool.results(end), server_cpu
    finally:
        pool.close()


async def capacity(
    side: StackSide, janus_server: janus.JanusServer | None, options: Options
) -> list[CapacityRow]:
    rows = []
    for size in options.sizes:
        rooms = layout(size, options.room_size)
        talkers = sum(tone is not None for tones in rooms for tone in tones)
        console.print(f"capacity: {size} participants, {len(rooms)} rooms, {talkers} talking ...")
        seats, calls = await chorus_seats(side, rooms)
        try:
            result, cpu = await load(seats, side.server_pid, options)
        finally:
            for call in calls:
                await side.end(call)
        rows.append(CapacityRow("Chorus", size, cpu, result))
        console.print(f"  {rows[-1].summary(options.bounds[0])}")
        if janus_server is not None:
            seats = await janus_seats(janus_server.url, rooms)
            result, cpu = await load(seats, janus_server.pid, options)
            rows.append(CapacityRow("Janus AudioBridge", size, cpu, result))
            console.print(f"  {rows[-1].summary(options.bounds[0])}")
    return rows


async def run(options: Options, janus_server: janus.JanusServer | None) -> None:
    with bench_stack() as stack:
        side = StackSide.start(stack, options.workers)
        await side.setup(max([*options.sizes, 2]))
        try:
            await measure(side, janus_server, options)
        finally:
            await side.close()


async def measure(
    side: StackSide, janus_server: janus.JanusServer | None, options: Options
) -> None:
    console.print(f"measuring {options.joins} bare aiortc connections (the floor) ...")
    floor = await floor_joins(options.joins, encoded_cycle(440.0), encoded_cycle(None))
    console.print(f"measuring {options.joins} calls: click to audio, then a join ...")
    clicks, joins = await click_and_join(side, options.joins)
    latency = [
        LatencyRow("join -> first mixed frame", joins, floor, "p50 <= 1.3x floor, p95 < 200 ms"),
        LatencyRow("click (start call) -> first mixed frame", clicks, floor, "p50 < 200 ms"),
    ]
    show(side.mode, latency, [], options.bounds, options.seconds)  # printed now: runs can fail
    rows = await capacity(side, janus_server, options)
    show(side.mode, latency, rows, options.bounds, options.seconds)


def parse() -> Options:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="media worker processes (default: chorus media's own, one per core)",
    )
    parser.add_argument("--joins", type=int, default=30, help="calls (and floor connections) timed")
    parser.add_argument("--sizes", default="10,30,60", help="participant counts for capacity")
    parser.add_argument("--room-size", type=int, default=5, help="participants per room")
    parser.add_argument("--seconds", type=float, default=10.0, help="capacity window per run")
    parser.add_argument(
        "--per-process",
        type=int,
        default=20,
        help="clients per client process (more processes if more clients)",
    )
    parser.add_argument(
        "--late-ms", default="20,60", help="lateness bounds (ms) for 'on time', comma-separated"
    )
    parser.add_argument("--skip-janus", action="store_true", help="no Janus AudioBridge peer")
    args = parser.parse_args()
    return Options(
        workers=args.workers,
        joins=args.joins,
        sizes=[int(s) for s in args.sizes.split(",") if s],
        room_size=args.room_size,
        seconds=args.seconds,
        per_process=args.per_process,
        bounds=[float(b) / 1000 for b in args.late_ms.split(",") if b],
        skip_janus=args.skip_janus,
    )


def main() -> None:
    options = parse()
    workdir = Path(tempfile.mkdtemp(prefix="chorus-media-bench-"))
    janus_server = None if options.skip_janus else janus.JanusServer(workdir)
    try:
        if janus_server is not None:
            janus_server.start()
        asyncio.run(run(options, janus_server))
    finally:
        if janus_server is not None:
            janus_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
