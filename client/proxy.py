"""Forwarding the page's API calls to the services, streamed both ways (SSE is not buffered)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

# Request headers the services read; anything else (cookies, the browser's own) stays here.
FORWARDED_REQUEST = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "last-event-id",
    "prefer",
)
# Hop-by-hop headers (RFC 9110 7.6.1) belong to each connection, not to the answer.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    }
)
OFFER_PATH = re.compile(r"^/v1/rooms/[0-9a-fA-F-]{36}/offer$")
# Proxied calls wait at most this long for an answer's start (Prefer: wait and ?after= take
# at most 10 s); a live stream has no read timeout, its keep-alive comments say it is alive.
ANSWER_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)


def problem(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def forward(http: httpx.AsyncClient, request: Request, url: str) -> Response:
    """Send `request` on to `url` and stream its answer back as it comes."""
    headers = {k: v for k, v in request.headers.items() if k in FORWARDED_REQUEST}
    streaming = "text/event-stream" in request.headers.get("accept", "")
    upstream = http.build_request(
        request.method,
        url,
        params=request.url.query,
        headers=headers,
        content=await request.body(),
        timeout=STREAM_TIMEOUT if streaming else ANSWER_TIMEOUT,
    )
    try:
        answer = await http.send(upstream, stream=True)
    except httpx.TransportError as exc:
        return problem(503, "service_unreachable", f"the service did not answer: {exc}")
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.TransportError:
            return  # the service went away mid-stream: end ours, the page reconnects
        finally:
            await answer.aclose()

    return StreamingResponse(body(), status_code=answer.status_code, headers=kept)


def offer_target(raw: str | None, media_hosts: frozenset[str]) -> str | None:
    """The media node URL an offer may go to: a room's offer path on a known media host."""
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or parts.hostname not in media_hosts:
        return None
    if parts.query or parts.fragment or not OFFER_PATH.match(parts.path):
        return None
    return raw
