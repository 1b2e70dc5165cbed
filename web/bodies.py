"""Request bodies: content type, size limit and schema checks with the contract's errors."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from schemas import bodies
from web.errors import Problem

MAX_BODY_BYTES = 64 * 1024
# Where a request's body is kept once read (its scope outlives each Request object made of it).
_RAW_BODY = "chorus.raw_body"

T = TypeVar("T", bound=msgspec.Struct)


async def decode_body(request: Request, type_: type[T]) -> T:
    """The request's JSON body as `type_`, or a Problem: 415, 413, 400 or 422."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise Problem(415, "unsupported_media_type", "send the body as application/json")
    body = await read_limited(request)
    try:
        return bodies.decode_body(type_, body)
    except bodies.InvalidBody as exc:
        raise Problem(422, "invalid_body", str(exc)) from exc
    except bodies.MalformedBody as exc:
        raise Problem(400, "malformed_json", f"the body is not valid JSON: {exc}") from exc


async def read_limited(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES without reading it all; read once."""
    cached = request.scope.get(_RAW_BODY)
    if isinstance(cached, bytes):
        return cached
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > MAX_BODY_BYTES
        except ValueError as exc:
            raise Problem(400, "bad_content_length", "Content-Length is not a number") from exc
        if too_big:
            raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request.scope[_RAW_BODY] = body
    return body


def _too_large() -> Problem:
    return Problem(413, "body_too_large", f"the body is over {MAX_BODY_BYTES // 1024} KiB")
