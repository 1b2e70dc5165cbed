"""What every Chorus HTTP service shares: a typed state opened in the lifespan, health and metrics.

Each service declares its state as a dataclass extending `ServiceState` (the connections and
caches it owns) and a context manager that opens it; `build_service` opens it when the app
starts and closes it on shutdown, and handlers reach it typed through `state_of`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute

from adapters.collector import settled_heap
from adapters.kafka import kafka_reachable
from auth.cache import VerifiedTokens
from auth.revocations import revocation_feed
from config.settings import Settings
from db.engines import database_reachable, make_async_engine
from web.errors import EXCEPTION_HANDLERS
from web.health import ReadinessCheck, health_routes
from web.limits import HeaderLimits
from web.metrics import RequestMetrics


@dataclass
class ServiceState:
    """What every service holds while it runs; each service extends it with its own parts."""

    settings: Settings
    tokens: VerifiedTokens


S = TypeVar("S", bound=ServiceState)
S_contra = TypeVar("S_contra", bound=ServiceState, contravariant=True)
# Opens a service's state (its connections, listeners, caches) and closes it on exit.
OpenState = Callable[[Settings, CollectorRegistry], AbstractAsyncContextManager[S]]


class StateCheck(Protocol[S_contra]):
    """A readiness check of a service, given its state."""

    def __call__(self, state: S_contra, /) -> Awaitable[bool]: ...


class UsesDatabase(Protocol):
    @property
    def engine(self) -> AsyncEngine: ...


async def kafka_ready(state: ServiceState) -> bool:
    bootstrap = state.settings.require_kafka()
    return await asyncio.to_thread(kafka_reachable, bootstrap, 2.0)


async def database_ready(state: UsesDatabase) -> bool:
    return await database_reachable(state.engine)


@asynccontextmanager
async def database_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """The service's database engine, disposed of on exit."""
    engine = make_async_engine(settings.require_database())
    try:
        yield engine
    finally:
        await engine.dispose()


def state_of(request: Request, kind: type[S]) -> S:
    """The state of the service that serves `request`, as the service's own type."""
    state = getattr(request.app.state, "service", None)
    if not isinstance(state, kind):
        raise RuntimeError("the service was used before its lifespan started")
    return state


@dataclass
class _Running(Generic[S]):
    state: S | None = None


def build_service(
    name: str,
    settings: Settings,
    routes: Sequence[BaseRoute],
    open_state: OpenState[S],
    checks: Mapping[str, StateCheck[S]],
) -> Starlette:
    """A Starlette app with the contract's health routes, JSON errors and request metrics.

    Nothing connects here: `open_state` runs in the lifespan. Until it has, every readiness
    check reports the service unavailable.
    """
    registry = CollectorRegistry()
    running: _Running[S] = _Running()

    def bound(check: StateCheck[S]) -> ReadinessCheck:
        async def run() -> bool:
            return running.state is not None and await check(running.state)

        return run

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            settled_heap(registry),
            open_state(settings, registry) as state,
            # Every service refuses revoked tokens, read from Kafka into memory.
            revocation_feed(
                settings.kafka_bootstrap, settings.topics.revocations, state.tokens.revocations
            ),
        ):
            running.state = app.state.service = state
            try:
                yield
            finally:
                running.state = app.state.service = None

    return Starlette(
        routes=[
            *health_routes(name, {key: bound(check) for key, check in checks.items()}, registry),
            *routes,
        ],
        middleware=[
            Middleware(HeaderLimits),
            Middleware(RequestMetrics, registry=registry, service=name),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
