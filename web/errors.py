"""Errors as the contract's JSON body, and the exception handlers every service installs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg
import sqlalchemy.exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
    504: "timeout",
}


class Problem(Exception):
    """An error a handler answers with the contract's JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The contract's error body: {"error": {"code", "message"}}."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _on_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


async def _on_database_trouble(request: Request, exc: Exception) -> Response:
    # The database is down, restarting or saturated: a dependency problem, so 503 (with a
    # log line saying what went wrong), never a 500.
    log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "database_unavailable",
        "the database is unavailable; try again shortly",
        headers={"Retry-After": "1"},
    )


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    Problem: _on_problem,
    HTTPException: _on_http_exception,
    # Pool exhausted, connection refused or lost.
    sqlalchemy.exc.TimeoutError: _on_database_trouble,
    sqlalchemy.exc.OperationalError: _on_database_trouble,
    sqlalchemy.exc.InterfaceError: _on_database_trouble,
    psycopg.OperationalError: _on_database_trouble,
}
