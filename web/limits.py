"""Bounded request heads: at most MAX_HEADERS headers and MAX_HEAD_BYTES of them, else 431.

Two layers. `HeaderLimits`, a pure ASGI middleware every service installs, applies the rule
to each request the server hands over. `BoundedHttpToolsProtocol`, the HTTP protocol the
`chorus` services run uvicorn with, bounds memory: httptools buffers a head until it is
complete, so a head still incomplete past a few times the limit is answered 431 there, and
whatever the client still sends is read and dropped, never buffered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADERS = 100
MAX_HEAD_BYTES = 16 * 1024
# The protocol counts whole reads, which may hold the end of a previous body: some slack.
PROTOCOL_HEAD_BYTES = 4 * MAX_HEAD_BYTES
# How long a refused client may go on sending before its connection is closed.
DRAIN_SECONDS = 5.0

_MESSAGE = (
    f"the request's headers are over the limit ({MAX_HEADERS} headers, "
    f"{MAX_HEAD_BYTES // 1024} KiB in all)"
)
_BODY = orjson.dumps({"error": {"code": "headers_too_large", "message": _MESSAGE}})


class HeaderLimits:
    """Answer 431 `headers_too_large` to a request over MAX_HEADERS or MAX_HEAD_BYTES."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _too_large(scope):
            await send(
                {
                    "type": "http.response.start",
                    "status": 431,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _BODY})
            return
        await self.app(scope, receive, send)


def _too_large(scope: Scope) -> bool:
    headers = scope["headers"]
    if len(headers) > MAX_HEADERS:
        return True
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    return size + sum(len(name) + len(value) + 4 for name, value in headers) > MAX_HEAD_BYTES


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing (431) a head that grows past the bound."""

    # In slots: three more keys in the instance dict (past CPython's 30 shared keys) would
    # unshare it, 1.3 KiB more for each open connection.
    __slots__ = ("_head_bytes", "_in_head", "_refused")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # read and dropped: the client may still be sending what was refused
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > PROTOCOL_HEAD_BYTES:
            self._refuse()

    def _refuse(self) -> None:
        self._refused = True
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"content-length: " + str(len(_BODY)).encode() + b"\r\n"
            b"connection: close\r\n\r\n" + _BODY
        )
        asyncio.get_running_loop().call_later(DRAIN_SECONDS, self.transport.close)
