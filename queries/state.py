"""What the queries service holds while it runs: its engine, the change hub and caches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from auth.cache import VerifiedTokens, forget_ended_memberships, membership_cache
from config.settings import Settings
from queries.callers import LiveCallers
from queries.hub import ChangeHub
from web.service import ServiceState, database_engine, state_of


@dataclass
class QueriesState(ServiceState):
    engine: AsyncEngine
    hub: ChangeHub
    callers: LiveCallers
    members: TTLCache[tuple[str, str], str]  # (team id, user id) -> role


@asynccontextmanager
async def open_queries_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[QueriesState]:
    """Connect to the database and start the change hub's listener; both closed on exit."""
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(database_engine(settings))
        hub = ChangeHub(
            engine, settings.require_database(), keepalive=settings.sse_keepalive_seconds
        )
        await hub.start()
        stack.push_async_callback(hub.close)
        clients = Gauge("chorus_live_clients", "Connected live-query clients", registry=registry)
        clients.set_function(hub.clients)
        tokens, members = VerifiedTokens(settings.require_secret), membership_cache()
        forget_ended_memberships(tokens.revocations, members)
        callers = LiveCallers(tokens.revocations)
        callers.watch_revocations(asyncio.get_running_loop())
        yield QueriesState(
            settings=settings,
            tokens=tokens,
            engine=engine,
            hub=hub,
            callers=callers,
            members=members,
        )


def queries_state(request: Request) -> QueriesState:
    """The state of the queries service serving `request`."""
    return state_of(request, QueriesState)
