"""The page asks the admin API in-process: what it shows is what the JSON routes answer.

A call is routed by the app's own router to the route's endpoint (the `operator_route` guard
included), with the signed-in operator's token as its bearer token, so the page can neither see
nor do anything the API would refuse that operator. Errors come back as the API's `Problem`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Message

from web.errors import Problem


async def call_api(
    request: Request,
    method: str,
    path: str,
    *,
    token: str | None,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> Any:
    """The decoded JSON answer of `method path` on this app; raises its Problem otherwise."""
    raw = b"" if body is None else orjson.dumps(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope: dict[str, Any] = {
        **request.scope,
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(query or {}).encode(),
        "headers": headers,
        "state": {},  # not the page request's: a body cached there is not this call's
    }
    for route in request.app.routes:
        match, child = route.matches(scope)
        if match == Match.FULL:
            scope.update(child)
            endpoint = getattr(route, "endpoint", None)
            if endpoint is None:
                break
            delivered = False

            async def receive() -> Message:
                nonlocal delivered
                if delivered:
                    return {"type": "http.disconnect"}
                delivered = True
                return {"type": "http.request", "body": raw, "more_body": False}

            response = await endpoint(Request(scope, receive))
            return orjson.loads(bytes(response.body)) if response.body else None
    raise Problem(404, "not_found", f"no admin route {method} {path}")
