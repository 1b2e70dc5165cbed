"""The queries service: read models over HTTP and live queries over server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Gauge
from starlette.applications import Starlette

from config.settings import Settings
from queries import live, reads
from queries.hub import ChangeHub
from queries.openapi import OPERATIONS
from web.openapi import openapi_route
from web.service import Resources, build_service


@asynccontextmanager
async def _live_path(app: Starlette, resources: Resources) -> AsyncIterator[None]:
    hub = ChangeHub(resources.require_engine(), resources.settings.require_database())
    await hub.start()
    resources.extras["hub"] = hub
    clients = Gauge(
        "chorus_live_clients", "Connected live-query clients", registry=resources.registry
    )
    clients.set_function(hub.clients)
    try:
        yield
    finally:
        await hub.close()


def create_app(settings: Settings) -> Starlette:
    """Build the queries service; connections open in its lifespan."""
    return build_service(
        "queries",
        settings,
        routes=[*reads.routes, *live.routes, openapi_route("Chorus queries", OPERATIONS)],
        extra=_live_path,
    )
