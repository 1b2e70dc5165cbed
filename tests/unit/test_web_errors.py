"""Errors as the contract's JSON body: Problems, HTTP errors, a database that is down."""

from __future__ import annotations

import logging

import psycopg
import pytest
import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.asgi import client
from web.errors import EXCEPTION_HANDLERS, Problem, error_response


def app_raising(error: Exception) -> Starlette:
    async def fail(request: Request) -> Response:
        raise error

    return Starlette(
        routes=[Route("/fail", fail, methods=["GET"])], exception_handlers=EXCEPTION_HANDLERS
    )


def test_the_error_body_is_the_contracts() -> None:
    response = error_response(409, "conflict", "already there", {"Retry-After": "3"})
    assert response.status_code == 409
    assert response.body == b'{"error":{"code":"conflict","message":"already there"}}'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "3"


async def test_a_problem_answers_with_its_status_code_message_and_headers() -> None:
    problem = Problem(429, "too_many_attempts", "slow down", {"Retry-After": "30"})
    async with client(app_raising(problem)) as http:
        answer = await http.get("/fail")
    assert answer.status_code == 429
    assert answer.json() == {"error": {"code": "too_many_attempts", "message": "slow down"}}
    assert answer.headers["retry-after"] == "30"


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "bad_request"), (401, "unauthorized"), (413, "payload_too_large"), (418, "error")],
)
async def test_an_http_exception_gets_a_code_for_its_status(status: int, code: str) -> None:
    async with client(app_raising(HTTPException(status, "told so"))) as http:
        answer = await http.get("/fail")
    assert answer.status_code == status
    assert answer.json() == {"error": {"code": code, "message": "told so"}}


async def test_unknown_routes_and_methods_get_the_contract_body() -> None:
    async with client(app_raising(ValueError())) as http:
        missing = await http.get("/nothing-here")
        wrong_method = await http.post("/fail")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "HEAD"}


@pytest.mark.parametrize(
    "trouble",
    [
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused")),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection closed")),
        psycopg.OperationalError("server closed the connection unexpectedly"),
    ],
    ids=["pool-timeout", "operational", "interface", "psycopg-operational"],
)
async def test_a_database_that_is_down_is_503_with_retry_after_and_a_log_line(
    trouble: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="web.errors"):
        async with client(app_raising(trouble)) as http:
            answer = await http.get("/fail")
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.headers["retry-after"] == "1"
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1 and messages[0].startswith("database unavailable for GET /fail")


async def test_a_bug_is_not_disguised_as_a_dependency_problem() -> None:
    async with client(app_raising(KeyError("bug")), raise_app_exceptions=False) as http:
        answer = await http.get("/fail")
    assert answer.status_code == 500
    async with client(app_raising(KeyError("bug"))) as http:
        with pytest.raises(KeyError):
            await http.get("/fail")
