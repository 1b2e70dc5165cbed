"""What the admin service holds while it runs: its database engine, verified tokens and the
audit relay (which publishes the audit log and revocations to Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from admin.audit import AuditRelay
from auth.cache import VerifiedTokens
from config.settings import Settings
from web.service import ServiceState, database_engine, state_of


@dataclass
class AdminState(ServiceState):
    engine: AsyncEngine
    relay: AuditRelay


@asynccontextmanager
async def open_admin_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[AdminState]:
    """Connect to the database and start the audit relay; both closed on exit."""
    async with database_engine(settings) as engine:
        relay = AuditRelay(engine, settings.require_kafka(), settings.topics)
        relay.start()
        try:
            yield AdminState(
                settings=settings,
                tokens=VerifiedTokens(settings.require_secret),
                engine=engine,
                relay=relay,
            )
        finally:
            await relay.close()


def admin_state(request: Request) -> AdminState:
    """The state of the admin service serving `request`."""
    return state_of(request, AdminState)
