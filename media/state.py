"""What the media service holds while it runs: its node (rooms, mixer, Kafka feed); no database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from auth.cache import VerifiedTokens
from config.settings import Settings
from media.node import MediaNode
from web.service import ServiceState, state_of


@dataclass
class MediaState(ServiceState):
    node: MediaNode


@asynccontextmanager
async def open_media_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[MediaState]:
    """Start the node; on shutdown (uvicorn runs this on SIGTERM) it drains, then stops."""
    node = MediaNode(settings, registry)
    await node.start()
    try:
        yield MediaState(
            settings=settings, tokens=VerifiedTokens(settings.require_secret), node=node
        )
    finally:
        await node.stop()


def media_state(request: Request) -> MediaState:
    """The state of the media service serving `request`."""
    return state_of(request, MediaState)


async def takes_rooms(state: MediaState) -> bool:
    """Readiness: the node has caught up with the log and is not draining."""
    return state.node.ready()
