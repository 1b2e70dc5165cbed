"""The load processes' lean HTTP client, against a small server on a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from bench.http_client import Disconnected, HttpPool, request_bytes

Answer = Callable[[bytes], bytes | None]  # request head -> answer bytes, or None to hang up


def ok(body: bytes, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{connection}\r\n"
    return head.encode() + body


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, list[int]]]:
    """A server answering each request with `answer`; yields its URL and the requests seen on
    each connection it accepted."""
    connections: list[int] = []
    serving: list[asyncio.Task[None] | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving.append(asyncio.current_task())
        connections.append(0)
        mine = len(connections) - 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                connections[mine] += 1
                reply = answer(head)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if b"Connection: close" in reply:
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        yield f"http://127.0.0.1:{port}", connections
        # The client hung up: each connection's handler reads the end and returns.
        handlers = [task for task in serving if task is not None]
        if handlers:
            await asyncio.wait(handlers, timeout=5)


def test_a_request_is_whole_http_with_its_length() -> None:
    request = request_bytes(
        "POST", "http://127.0.0.1:8080/v1/x?y=1", {"Authorization": "Bearer t"}, b'{"a":1}'
    )
    assert request == (
        b"POST /v1/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer t\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}'
    )


async def test_requests_one_after_another_share_one_keep_alive_connection() -> None:
    async with server(lambda head: ok(b"hello")) as (url, connections):
        pool = HttpPool(url, limit=4)
        request = request_bytes("POST", f"{url}/x", {}, b"{}")
        answers = [await pool.send(request) for _ in range(3)]
        pool.close()
    assert answers == [(200, b"hello")] * 3
    assert connections == [3]


async def test_requests_at_once_open_at_most_the_limit_of_connections() -> None:
    async with server(lambda head: ok(b"x")) as (url, connections):
        pool = HttpPool(url, limit=2)
        request = request_bytes("POST", f"{url}/x", {}, b"")
        answers = await asyncio.gather(*(pool.send(request) for _ in range(10)))
        pool.close()
    assert answers == [(200, b"x")] * 10
    assert len(connections) <= 2 and sum(connections) == 10


async def test_a_connection_the_server_closes_is_not_reused() -> None:
    async with server(lambda head: ok(b"bye", close=True)) as (url, connections):
        pool = HttpPool(url, limit=1)
        request = request_bytes("POST", f"{url}/x", {}, b"")
        assert await pool.send(request) == (200, b"bye")
        assert await pool.send(request) == (200, b"bye")
        pool.close()
    assert connections == [1, 1]


async def test_a_server_that_hangs_up_instead_of_answering_is_a_disconnect() -> None:
    async with server(lambda head: None) as (url, _connections):
        pool = HttpPool(url, limit=1)
        request = request_bytes("POST", f"{url}/x", {}, b"")
        with pytest.raises(Disconnected):
            await pool.send(request)
        pool.close()


async def test_an_answer_that_never_comes_times_out() -> None:
    async with server(lambda head: b"") as (url, _connections):  # says nothing
        pool = HttpPool(url, limit=1, timeout=0.2)
        request = request_bytes("POST", f"{url}/x", {}, b"")
        with pytest.raises(TimeoutError):
            await pool.send(request)
        pool.close()


def test_on_uvloop_as_the_load_processes_run_it() -> None:
    async def three() -> tuple[list[tuple[int, bytes]], list[int]]:
        async with server(lambda head: ok(b"fast")) as (url, connections):
            pool = HttpPool(url, limit=1)
            request = request_bytes("POST", f"{url}/x", {}, b"")
            answers = [await pool.send(request) for _ in range(3)]
            pool.close()
        return answers, connections

    assert uvloop.run(three()) == ([(200, b"fast")] * 3, [3])
