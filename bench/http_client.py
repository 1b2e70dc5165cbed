"""A lean keep-alive HTTP/1.1 client for load processes that share the machine with the stack.

A load generator's CPU is taken from the system it measures: aiohttp spends about 0.3 ms of
Python per request, a third of a core at 1,000 requests a second on a two-core machine. Here each
request is bytes built once by the caller, written to an idle keep-alive connection, and its
answer parsed by httptools (llhttp, the parser uvicorn uses); run it on uvloop.
"""

from __future__ import annotations

import asyncio
from typing import cast
from urllib.parse import urlsplit

import httptools


class Disconnected(Exception):
    """The server closed the connection before answering (a keep-alive one may be stale)."""


def request_bytes(method: str, url: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A whole HTTP/1.1 request with its body, for `url`."""
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1"]
    lines.append(f"Host: {parts.netloc}")
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"unreadable answer: {exc}"))
            self.close()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        answer, self._answer = self._answer, None
        body, self._body = b"".join(self._body), []
        if answer is not None and not answer.done():
            answer.set_result((self._parser.get_status_code(), body))
        if not self._parser.should_keep_alive():
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(Disconnected(f"the server closed the connection ({exc or 'no error'})"))

    def _fail(self, exc: Exception) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self._answer is None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpPool:
    """At most `limit` keep-alive connections to one server, reused across requests."""

    def __init__(self, base_url: str, limit: int, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"an http:// URL is needed, not {base_url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._timeout = timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """(status, body) of one request's answer.

        Raises `Disconnected` if the server closed the connection first, TimeoutError past
        `timeout`, OSError if no connection could be made."""
        async with self._slots:
            connection = self._take_idle() or await self._connect()
            try:
                async with asyncio.timeout(self._timeout):
                    status, body = await connection.send(request)
            except BaseException:
                connection.close()
                raise
            if not connection.closed:
                self._idle.append(connection)
            return status, body

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:  # else the server closed it while it was idle
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            _, connection = await loop.create_connection(_Connection, self._host, self._port)
        return connection

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()
