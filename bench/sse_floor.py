"""The fan-out floor: a minimal SSE broadcaster (no database, no auth, no framework).

`GET /live` holds a stream open; `POST /emit?id=N` answers at once, then writes one frame,
encoded once, to every open stream. Run by uvicorn with the protocol Chorus services use:

    .venv/bin/python -m uvicorn bench.sse_floor:app --http httptools --port 8099
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from starlette.types import Message, Receive, Scope, Send

# About the size of a presence change's data.
DATA = orjson.dumps(
    {
        "user_id": "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d",
        "status": "available",
        "device_id": "bench",
        "updated_at": "2026-11-23T19:30:00.123Z",
    }
)
streams: set[Send] = set()


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/emit":
        event_id = int(parse_qs(scope["query_string"].decode())["id"][0])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        frame: Message = {
            "type": "http.response.body",
            "body": b"event: presence\nid: %d\ndata: %s\n\n" % (event_id, DATA),
            "more_body": True,
        }
        for stream in list(streams):
            await stream(frame)
        return
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    streams.add(send)
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    finally:
        streams.discard(send)
