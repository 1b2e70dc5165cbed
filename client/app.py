"""`chorus web`: the browser client's page, and one same-origin entry point to the services.

The page calls `/api/commands/...`, `/api/queries/...` and `POST /api/offer?url=<offer_url>`
on the origin that served it, and this app forwards them; so the services need no CORS at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from client.proxy import forward, offer_target, problem
from config.settings import Settings
from web.health import health_routes

STATIC = Path(__file__).parent / "static"


def _local(host: str) -> str:
    """Where this machine's services answer, for a service listening on `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def create_app(settings: Settings) -> Starlette:
    host = _local(settings.host)
    commands = f"http://{host}:{settings.commands_port}"
    queries = f"http://{host}:{settings.queries_port}"
    media_host = urlsplit(settings.media_base_url()).hostname or host
    media_hosts = frozenset({media_host, host})
    client: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One pooled client: the page's requests reuse warm connections to the services.
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
        async with httpx.AsyncClient(limits=limits) as http:
            client["http"] = http
            yield

    async def to_commands(request: Request) -> Response:
        path = request.path_params["path"]
        return await forward(client["http"], request, f"{commands}/{path}")

    async def to_queries(request: Request) -> Response:
        path = request.path_params["path"]
        return await forward(client["http"], request, f"{queries}/{path}")

    async def to_media(request: Request) -> Response:
        target = offer_target(request.query_params.get("url"), media_hosts)
        if target is None:
            return problem(400, "bad_offer_url", "url must be a call's media offer_url")
        return await forward(client["http"], request, target)

    async def services_up() -> bool:
        answers = [await client["http"].get(f"{base}/healthz") for base in (commands, queries)]
        return all(a.status_code == 200 for a in answers)

    registry = CollectorRegistry()
    methods = ["GET", "POST"]
    return Starlette(
        routes=[
            *health_routes("web", {"services": services_up}, registry),
            Route("/api/commands/{path:path}", to_commands, methods=methods),
            Route("/api/queries/{path:path}", to_queries, methods=["GET"]),
            Route("/api/offer", to_media, methods=["POST"]),
            Mount("/", StaticFiles(directory=STATIC, html=True), name="static"),
        ],
        lifespan=lifespan,
    )
