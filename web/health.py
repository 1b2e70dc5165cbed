"""`/healthz`, `/readyz` and `/metrics` for one service; readiness checks bounded in time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ReadinessCheck = Callable[[], Awaitable[bool]]

# A readiness probe must answer quickly even when a dependency hangs.
READINESS_TIMEOUT_SECONDS = 2.5


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
