"""What the admin service holds while it runs: its database engine and verified tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from auth.cache import VerifiedTokens
from config.settings import Settings
from web.service import ServiceState, database_engine, state_of


@dataclass
class AdminState(ServiceState):
    engine: AsyncEngine


@asynccontextmanager
async def open_admin_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[AdminState]:
    """Connect to the database; disposed of on exit."""
    async with database_engine(settings) as engine:
        yield AdminState(
            settings=settings, tokens=VerifiedTokens(settings.require_secret), engine=engine
        )


def admin_state(request: Request) -> AdminState:
    """The state of the admin service serving `request`."""
    return state_of(request, AdminState)
