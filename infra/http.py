"""HTTP plumbing shared by the services: error bodies, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg
import sqlalchemy.exc
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ReadinessCheck = Callable[[], Awaitable[bool]]

log = logging.getLogger(__name__)

# A readiness probe must answer quickly even when a dependency hangs.
READINESS_TIMEOUT_SECONDS = 2.5

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


def path_uuid(request: Request, name: str) -> str:
    """A path parameter that must be a UUID; anything else names no resource (404)."""
    try:
        return str(uuid.UUID(str(request.path_params[name])))
    except ValueError as exc:
        raise Problem(404, "not_found", f"no such {name.removesuffix('_id')}") from exc


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


def health_routes(
    service: str, checks: Mapping[str, ReadinessCheck], registry: CollectorRegistry
) -> list[Route]:
    """`/healthz`, `/readyz` and `/metrics` for one service."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": service})

    async def readyz(request: Request) -> Response:
        results = await run_checks(checks)
        ready = all(results.values())
        body = {"status": "ready" if ready else "unavailable", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


async def run_checks(checks: Mapping[str, ReadinessCheck]) -> dict[str, bool]:
    """Run every readiness check at once, each bounded in time; a hang counts as down."""

    async def bounded(check: ReadinessCheck) -> bool:
        try:
            return await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
        except Exception:
            return False

    names = list(checks)
    outcomes = await asyncio.gather(*(bounded(checks[name]) for name in names))
    return dict(zip(names, outcomes, strict=True))


class RequestMetrics:
    """Pure ASGI middleware counting requests and timing them, by route and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, service: str) -> None:
        self.app = app
        self.requests = Counter(
            "chorus_http_requests",
            "HTTP requests answered",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "chorus_http_request_seconds",
            "Time to answer an HTTP request",
            ["service", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            self.requests.labels(self.service, scope["method"], route, str(status)).inc()
            self.latency.labels(self.service, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    # The matched route's template keeps label cardinality bounded (ids stay out of labels).
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
