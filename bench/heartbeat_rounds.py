"""The heartbeat benchmark's rounds: devices beating over a stretch of time, from the load
processes over HTTP (bench/heartbeat_load.py `run_load`) or appended to the commands topic
(`--direct`, `run_direct`), and the first-heard wave that comes before the steady run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from multiprocessing import get_context
from typing import Any

import aiohttp

from bench.harness import console
from bench.heartbeat_load import (
    Device,
    DirectSpec,
    LoadResult,
    LoadSpec,
    merge,
    outcomes_heard,
    run_direct,
    run_load,
    timed,
)
from bench.heartbeat_teams import Team, devices_of, settle

#: The load processes start their first round this long after they are launched (imports).
LOAD_START_SECONDS = 5.0
#: --no-wait: how long after the last send its outcomes are waited for.
OUTCOME_WAIT_SECONDS = 60.0


@dataclass
class Load:
    """Runs rounds of heartbeats; `args` holds interval, processes, connections and direct."""

    commands: str
    args: Any
    pool: ProcessPoolExecutor | None  # the load processes (None with --direct)

    async def run(
        self, devices: list[Device], phases: list[float], start_at: float, seconds: float
    ) -> LoadResult:
        """Each device beating at start_at + its phase + k * interval, for `seconds`."""
        args = self.args
        if self.pool is None:
            bootstrap, topic, dsn = args.direct
            spec = DirectSpec(bootstrap, topic, dsn, devices, start_at, args.interval, seconds)
            return await asyncio.to_thread(run_direct, spec, phases)
        count, pool = args.processes, self.pool
        connections = max(1, args.connections // count)
        shares = [
            LoadSpec(
                self.commands,
                devices[n::count],
                start_at,
                args.interval,
                seconds,
                connections,
                no_wait=bool(args.no_wait),
            )
            for n in range(count)
        ]
        loop = asyncio.get_running_loop()
        sends = (
            loop.run_in_executor(pool, run_load, share, phases[n::count])
            for n, share in enumerate(shares)
        )
        if not args.no_wait:
            return merge(list(await asyncio.gather(*sends)))
        # One listener here for every load process's heartbeats (not one per process).
        with outcomes_heard(args.no_wait) as heard:
            result = merge(list(await asyncio.gather(*sends)))
            deadline = time.monotonic() + OUTCOME_WAIT_SECONDS
            while time.monotonic() < deadline and not heard.keys() >= result.sent_at.keys():
                await asyncio.sleep(0.1)
        timed(result, result.sent_at, heard)
        return result


@contextmanager
def load_of(commands: str, args: Any) -> Iterator[Load]:
    """The run's load: its processes (spawned once, for every round) unless --direct."""
    if args.direct:
        yield Load(commands, args, None)
        return
    with ProcessPoolExecutor(args.processes, mp_context=get_context("spawn")) as pool:
        yield Load(commands, args, pool)


def spread(count: int, interval: float) -> list[float]:
    """Phases of `count` devices spread evenly over the interval."""
    return [interval * index / count for index in range(count)]


@dataclass
class Wave:
    result: LoadResult  # every round's, merged
    rounds: int
    decided: float  # seconds from the wave's start until its first round was answered
    settled: float  # seconds from its start until every device showed online
    next_round: float  # monotonic: when the devices' next heartbeats are due


async def first_wave(
    session: aiohttp.ClientSession, queries: str, load: Load, teams: list[Team], args: Any
) -> Wave:
    """Every device's first heartbeat at once (each comes online: a change), then rounds on the
    steady phases, so that no lease runs out meanwhile, until every device shows online."""
    devices = [replace(d, silenced=False) for d in devices_of(teams)]
    began = start = time.monotonic() + (0.0 if args.direct else LOAD_START_SECONDS)
    console.print(f"first heartbeats of {len(devices)} devices at once (they come online) ...")
    results = [await load.run(devices, [0.0] * len(devices), start, args.interval)]
    decided = time.monotonic() - began
    console.print(
        f"answered in {decided:.1f}s: {len(results[0].accepted_ids)} accepted, errors: "
        f"{results[0].errors}; beating on until every device shows online ..."
    )
    settling = asyncio.create_task(_settled_at(session, queries, teams, args.settle_timeout))
    phases = spread(len(devices), args.interval)
    try:
        while not settling.done():
            start = max(start + args.interval, time.monotonic())
            results.append(await load.run(devices, phases, start, args.interval))
            last = results[-1]
            console.print(
                f"  round {len(results)}: {len(last.accepted_ids)} accepted, errors: {last.errors}"
            )
    finally:
        settling.cancel()
    settled = settling.result() - began  # raises if it never settled
    return Wave(merge(results), len(results), decided, settled, time.monotonic() + 0.5)


async def _settled_at(
    session: aiohttp.ClientSession, queries: str, teams: list[Team], timeout: float
) -> float:
    await settle(session, queries, teams, timeout)
    return time.monotonic()
