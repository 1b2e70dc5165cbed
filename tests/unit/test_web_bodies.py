"""Request bodies: 415, 413, 400 and 422 with the contract's codes, and a body read only once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive

from tests.asgi import client
from web.bodies import MAX_BODY_BYTES, decode_body, read_limited
from web.errors import EXCEPTION_HANDLERS, Problem


class Greeting(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    times: int = 1


async def greet(request: Request) -> Response:
    body = await decode_body(request, Greeting)
    return JSONResponse({"name": body.name, "times": body.times})


APP = Starlette(
    routes=[Route("/greet", greet, methods=["POST"])], exception_handlers=EXCEPTION_HANDLERS
)
JSON = {"Content-Type": "application/json"}


async def post(content: bytes, headers: dict[str, str]) -> tuple[int, object]:
    async with client(APP) as http:
        answer = await http.post("/greet", content=content, headers=headers)
    return answer.status_code, answer.json()


async def test_a_valid_body_is_decoded() -> None:
    assert await post(b'{"name": "ada", "times": 2}', JSON) == (200, {"name": "ada", "times": 2})


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
async def test_json_with_parameters_or_capitals_is_json(content_type: str) -> None:
    status, _ = await post(b'{"name": "ada"}', {"Content-Type": content_type})
    assert status == 200


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
async def test_anything_but_json_is_415(headers: dict[str, str]) -> None:
    status, body = await post(b'{"name": "ada"}', headers)
    assert (status, _code(body)) == (415, "unsupported_media_type")


async def test_malformed_json_is_400() -> None:
    status, body = await post(b'{"name": ', JSON)
    assert (status, _code(body)) == (400, "malformed_json")


@pytest.mark.parametrize(
    ("content", "field"),
    [(b'{"name": 3}', "$.name"), (b"{}", "name"), (b'{"name": "a", "extra": 1}', "extra")],
)
async def test_a_body_that_breaks_the_schema_is_422_naming_the_field(
    content: bytes, field: str
) -> None:
    status, body = await post(content, JSON)
    assert (status, _code(body)) == (422, "invalid_body")
    assert field in _message(body)


async def test_a_body_of_exactly_the_limit_is_read() -> None:
    padding = MAX_BODY_BYTES - len(b'{"name": ""}')
    status, body = await post(b'{"name": "' + b"x" * padding + b'"}', JSON)
    assert status == 200 and len(_field(body, "name")) == padding


async def test_a_declared_length_over_the_limit_is_413_before_reading_it() -> None:
    async def unread() -> Message:
        raise AssertionError("the body was read")

    request = _request([], content_length=str(MAX_BODY_BYTES + 1).encode(), receive=unread)
    with pytest.raises(Problem) as refused:
        await read_limited(request)
    assert (refused.value.status, refused.value.code) == (413, "body_too_large")
    assert refused.value.message == "the body is over 64 KiB"


async def test_an_oversized_body_answers_413_over_http() -> None:
    status, body = await post(b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}', JSON)
    assert (status, _code(body)) == (413, "body_too_large")


async def test_a_streamed_body_is_refused_once_past_the_limit_without_reading_it_all() -> None:
    chunk, sent = b"x" * 4096, 0

    async def long_stream() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(4 * MAX_BODY_BYTES // len(chunk)):
            sent += len(chunk)
            yield chunk

    async with client(APP) as http:
        answer = await http.post("/greet", content=long_stream(), headers=JSON)
    assert "content-length" not in answer.request.headers  # chunked: nothing declared
    assert (answer.status_code, _code(answer.json())) == (413, "body_too_large")
    assert sent <= MAX_BODY_BYTES + 2 * len(chunk)


async def test_a_content_length_that_is_not_a_number_is_400() -> None:
    request = _request([b"{}"], content_length=b"many")
    with pytest.raises(Problem) as refused:
        await read_limited(request)
    assert (refused.value.status, refused.value.code) == (400, "bad_content_length")


async def test_the_body_is_read_once_and_kept_for_the_next_reader() -> None:
    request = _request([b'{"name":', b' "ada"}'])
    assert await read_limited(request) == b'{"name": "ada"}'
    # The stream is spent now; a second read must come from what the first one kept.
    assert await read_limited(request) == b'{"name": "ada"}'
    assert (await decode_body(request, Greeting)).name == "ada"


def _request(
    chunks: list[bytes], content_length: bytes | None = None, receive: Receive | None = None
) -> Request:
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length))
    messages = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def next_message() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    return Request(scope, receive or next_message)


def _code(body: object) -> str:
    assert isinstance(body, dict)
    return str(body["error"]["code"])


def _message(body: object) -> str:
    assert isinstance(body, dict)
    return str(body["error"]["message"])


def _field(body: object, name: str) -> str:
    assert isinstance(body, dict)
    return str(body[name])
