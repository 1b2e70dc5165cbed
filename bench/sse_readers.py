"""SSE readers for the live benchmark, spread over processes so that no one core reads them all.

Each reader process holds its share of the connections as bare asyncio protocols (no HTTP client
library: reading costs as little as it can) and notes, per event id, when each connection
received it (CLOCK_MONOTONIC, which every process of the machine shares). The parent drives the
processes over pipes: open connections, collect arrivals, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

OPEN_BATCH = 200  # connections opened at once: a storm of SYNs overflows the listen backlog


class SseReader(asyncio.Protocol):
    """One SSE connection: the response head, then an arrival time per `id:` line."""

    def __init__(self, arrivals: dict[int, list[float]], request: bytes) -> None:
        self.arrivals = arrivals
        self.request = request
        self.head = asyncio.get_running_loop().create_future()
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.head.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.buffer.split(b"\r\n", 1)[0]
            if b" 200 " not in status + b" ":
                self.head.set_exception(RuntimeError(f"answered {status!r}"))
                return
            self.head.set_result(None)
        last = self.buffer.rfind(b"\n")
        if last < 0:
            return
        lines, self.buffer = self.buffer[:last], self.buffer[last + 1 :]
        start = lines.find(b"id: ")
        while start >= 0:
            if start == 0 or lines[start - 1] == 10:  # at the start of a line
                end = lines.find(b"\n", start)
                self.arrivals.setdefault(
                    int(lines[start + 4 : end if end >= 0 else None]), []
                ).append(now)
            start = lines.find(b"id: ", start + 4)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionError(f"closed before answering: {exc}"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            raw = self.transport.get_extra_info("socket")
            if raw is not None:  # reset, not FIN: 10,000 closes leave no TIME_WAIT behind
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.close()


async def _serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    arrivals: dict[int, list[float]] = {}
    readers: list[SseReader] = []
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == "open":
            host, port, request, count = args
            for first in range(0, count, OPEN_BATCH):
                batch = [
                    SseReader(arrivals, request) for _ in range(min(OPEN_BATCH, count - first))
                ]
                for reader in batch:
                    await loop.create_connection(lambda r=reader: r, host, port)  # type: ignore[misc]
                await asyncio.wait_for(asyncio.gather(*(r.head for r in batch)), 60)
                readers += batch
            pipe.send(len(readers))
        elif command == "count":
            pipe.send(len(arrivals.get(args[0], ())))
        elif command == "collect":
            pipe.send(arrivals)
            arrivals = {}
            for reader in readers:
                reader.arrivals = arrivals
        elif command == "close":
            for reader in readers:
                reader.close()
            readers = []
            await asyncio.sleep(0.2)
            pipe.send(None)
        else:
            return


def _main(pipe: Connection) -> None:
    try:
        asyncio.run(_serve(pipe))
    except KeyboardInterrupt:
        pass
    except BaseException as exc:  # told to the parent, which would otherwise see only EOF
        pipe.send(RuntimeError(f"a reader process failed: {exc!r}"))
        raise


@dataclass
class ReaderPool:
    """`processes` reader processes; connections are shared out among them."""

    processes: int
    _pipes: list[Connection] = field(default_factory=list)
    _children: list[Any] = field(default_factory=list)

    def __enter__(self) -> ReaderPool:
        context = multiprocessing.get_context("spawn")
        for _ in range(self.processes):
            parent, child = context.Pipe()
            process = context.Process(target=_main, args=(child,), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._children.append(process)
        return self

    def __exit__(self, *exc: object) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(("exit",))
        for process in self._children:
            process.join(5)
            if process.is_alive():
                process.kill()

    def open(self, host: str, port: int, path: str, headers: Sequence[str], clients: int) -> None:
        """Connect `clients` readers to `path`; returns once every one has its response head."""
        head = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        request = "\r\n".join([*head, *headers, "", ""]).encode()
        shares = [
            clients // self.processes + (i < clients % self.processes)
            for i in range(self.processes)
        ]
        for pipe, share in zip(self._pipes, shares, strict=True):
            pipe.send(("open", host, port, request, share))
        opened = sum(self._answer(pipe) for pipe in self._pipes)
        if opened != clients:
            raise RuntimeError(f"{opened} of {clients} readers connected")

    def wait_for(self, event_id: int, clients: int, timeout: float = 120.0) -> None:
        """Return once every one of `clients` has received `event_id` (or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pipe in self._pipes:
                pipe.send(("count", event_id))
            if sum(self._answer(pipe) for pipe in self._pipes) >= clients:
                return
            time.sleep(0.1)

    def collect(self) -> dict[int, list[float]]:
        """Every arrival since the last collect: event id -> one time per connection."""
        merged: dict[int, list[float]] = {}
        for pipe in self._pipes:
            pipe.send(("collect",))
        for pipe in self._pipes:
            for event_id, times in self._answer(pipe).items():
                merged.setdefault(event_id, []).extend(times)
        return merged

    def close(self) -> None:
        for pipe in self._pipes:
            pipe.send(("close",))
        for pipe in self._pipes:
            self._answer(pipe)

    @staticmethod
    def _answer(pipe: Connection) -> Any:
        answer = pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer
