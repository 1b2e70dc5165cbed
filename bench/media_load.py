"""Load clients in processes of their own, so that their CPU is not counted against the server.

Each client process joins its share of seats (Chorus: offer URL + token; Janus: a room), then
logs every decoded frame; over a window the main process names, it reports frames on time and
its own CPU. Talkers send a tone, the others silence, all pre-encoded.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import httpx

from bench import janus
from bench.proc import cpu_seconds
from bench.rtc import OnTime, Peer, encoded_cycle, on_time

JOINS_AT_ONCE = 4  # per client process: ICE and DTLS set-up are CPU-heavy
SETTLE = 0.6  # s after the window: the window's last frames may still be on their way


@dataclass(frozen=True)
class Seat:
    """How one client connects: to Chorus (`offer_url` + `token`) or to a Janus room."""

    label: str
    tone: float | None  # Hz, or None for a listener sending silence
    offer_url: str = ""
    token: str = ""
    janus_url: str = ""
    janus_room: int = 0


@dataclass
class LoadResult:
    """What a set of client processes measured over one window."""

    on_time: dict[float, OnTime] = field(default_factory=dict)  # by lateness bound (s)
    decoded: dict[float, OnTime] = field(default_factory=dict)  # the same, after aiortc's buffer
    client_cpu: list[float] = field(default_factory=list)  # share of a core, per process
    errors: list[str] = field(default_factory=list)


async def answer_for(http: httpx.AsyncClient, seat: Seat, sdp: str) -> str:
    """Signal one offer: POST it to Chorus, or join the Janus room with it."""
    if seat.janus_url:
        return await janus.join(http, seat.janus_url, seat.janus_room, sdp, seat.label)
    headers = {"Authorization": f"Bearer {seat.token}"}
    deadline = time.monotonic() + 10
    while True:
        try:
            answer = await http.post(
                seat.offer_url, json={"sdp": sdp, "type": "offer"}, headers=headers
            )
        except httpx.TransportError:
            # A pooled keep-alive connection the server closed just then; an offer sent again
            # replaces the first (the same user rejoining).
            if time.monotonic() < deadline:
                continue
            raise
        # The media node may not have seen the join yet: 403/404 for a moment is not an error.
        if answer.status_code in (403, 404) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            continue
        answer.raise_for_status()
        return str(answer.json()["sdp"])


async def connect(http: httpx.AsyncClient, peer: Peer, seat: Seat) -> None:
    await peer.accept(await answer_for(http, seat, await peer.offer()))
    await peer.first_frame()


async def _serve(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    command, seats, bounds = await loop.run_in_executor(None, conn.recv)
    assert command == "join"
    cycles: dict[float | None, list[bytes]] = {}
    peers = []
    for seat in seats:
        if seat.tone not in cycles:
            cycles[seat.tone] = encoded_cycle(seat.tone)
        peers.append(Peer(cycles[seat.tone]))
    errors: list[str] = []
    limit = asyncio.Semaphore(JOINS_AT_ONCE)
    async with httpx.AsyncClient(timeout=30) as http:

        async def join(peer: Peer, seat: Seat) -> None:
            async with limit:
                try:
                    await connect(http, peer, seat)
                except Exception as error:  # reported to the main process, which fails the run
                    errors.append(f"{seat.label}: {type(error).__name__}: {error}")

        await asyncio.gather(*(join(p, s) for p, s in zip(peers, seats, strict=True)))
        conn.send(("joined", errors))
        command, start, end = await loop.run_in_executor(None, conn.recv)
        assert command == "window"
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu_start = cpu_seconds(os.getpid())
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        cpu = (cpu_seconds(os.getpid()) - cpu_start) / (end - start)
        await asyncio.sleep(SETTLE)
        totals = {bound: OnTime(0, 0, 0) for bound in bounds}
        decoded = dict(totals)
        for peer in peers:
            for bound in bounds:
                totals[bound] = totals[bound] + on_time(peer.wire, start, end, bound)
                decoded[bound] = decoded[bound] + on_time(peer.log, start, end, bound)
        conn.send(("result", totals, decoded, cpu))
        await asyncio.gather(*(peer.close() for peer in peers))


def _worker(conn: Connection) -> None:
    asyncio.run(_serve(conn))
    conn.close()


class ClientPool:
    """`processes` client processes sharing the seats round-robin."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._links: list[Connection] = []
        self._procs: list[Any] = []
        for _ in range(processes):
            mine, theirs = context.Pipe()
            process = context.Process(target=_worker, args=(theirs,), daemon=True)
            process.start()
            self._links.append(mine)
            self._procs.append(process)

    async def _recv(self, link: Connection, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, link.poll, timeout):
            raise RuntimeError("a client process did not answer in time")
        return link.recv()

    async def join(self, seats: list[Seat], bounds: list[float]) -> list[str]:
        """Connect every seat; the errors, if any."""
        share = len(self._links)
        for index, link in enumerate(self._links):
            link.send(("join", seats[index::share], bounds))
        errors: list[str] = []
        for link in self._links:
            _, failed = await self._recv(link, 300)
            errors.extend(failed)
        return errors

    def open_window(self, start: float, end: float) -> None:
        """Tell every process the measuring window [start, end) (monotonic clock)."""
        for link in self._links:
            link.send(("window", start, end))

    async def results(self, end: float) -> LoadResult:
        """Frames on time over the window, and each process's CPU."""
        result = LoadResult()
        for link in self._links:
            _, totals, decoded, cpu = await self._recv(link, end - time.monotonic() + 60)
            result.client_cpu.append(cpu)
            for bound, counted in totals.items():
                result.on_time[bound] = result.on_time.get(bound, OnTime(0, 0, 0)) + counted
            for bound, counted in decoded.items():
                result.decoded[bound] = result.decoded.get(bound, OnTime(0, 0, 0)) + counted
        return result

    def close(self) -> None:
        for link in self._links:
            link.close()  # a process still waiting for a command ends (EOFError)
        for process in self._procs:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
