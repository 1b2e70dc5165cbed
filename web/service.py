"""What every Chorus HTTP service shares: dependencies opened in a lifespan, health and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from adapters.kafka import kafka_reachable
from config.settings import Settings
from db.engines import database_reachable, make_async_engine
from web.errors import EXCEPTION_HANDLERS
from web.health import ReadinessCheck, health_routes
from web.metrics import RequestMetrics

Extra = Callable[[Starlette, "Resources"], AbstractAsyncContextManager[None]]


@dataclass
class Resources:
    """Connections a service opens at start-up and closes at shutdown."""

    settings: Settings
    registry: CollectorRegistry
    engine: AsyncEngine | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def require_engine(self) -> AsyncEngine:
        if self.engine is None:
            raise RuntimeError("the service was used before its lifespan started")
        return self.engine

    async def kafka_ready(self) -> bool:
        bootstrap = self.settings.require_kafka()
        return await asyncio.to_thread(kafka_reachable, bootstrap, 2.0)

    async def database_ready(self) -> bool:
        return await database_reachable(self.require_engine())


def build_service(
    name: str,
    settings: Settings,
    routes: Sequence[BaseRoute],
    *,
    uses_database: bool = True,
    uses_kafka: bool = True,
    extra: Extra | None = None,
    readiness: Mapping[str, ReadinessCheck] | None = None,
) -> Starlette:
    """A Starlette app with the contract's health routes, JSON errors and request metrics.

    Nothing connects here: the database engine and any `extra` resources open in the lifespan.
    `readiness` adds the service's own checks to `/readyz`.
    """
    registry = CollectorRegistry()
    resources = Resources(settings=settings, registry=registry)
    checks: dict[str, ReadinessCheck] = {}
    if uses_kafka:
        checks["kafka"] = resources.kafka_ready
    if uses_database:
        checks["database"] = resources.database_ready
    checks.update(readiness or {})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if uses_database:
                resources.engine = make_async_engine(settings.require_database())
                stack.push_async_callback(resources.engine.dispose)
            if extra is not None:
                await stack.enter_async_context(extra(app, resources))
            yield

    app = Starlette(
        routes=[*health_routes(name, checks, registry), *routes],
        middleware=[Middleware(RequestMetrics, registry=registry, service=name)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.resources = resources
    return app
