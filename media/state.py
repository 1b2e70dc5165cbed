"""What the media service holds while it runs (no database; its rooms will live here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from auth.cache import VerifiedTokens
from config.settings import Settings
from web.service import ServiceState, state_of


@dataclass
class MediaState(ServiceState):
    pass


@asynccontextmanager
async def open_media_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[MediaState]:
    """The media service's state; it opens no connection yet."""
    yield MediaState(settings=settings, tokens=VerifiedTokens(settings.require_secret))


def media_state(request: Request) -> MediaState:
    """The state of the media service serving `request`."""
    return state_of(request, MediaState)
