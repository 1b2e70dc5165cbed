"""The media service: WebRTC signalling and audio mixing rooms, allocated from the call events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from config.settings import Settings
from media import offer_route
from media.node import MediaNode
from web.service import Resources, build_service


def create_app(settings: Settings) -> Starlette:
    """Build the media service; it needs Kafka (call events, heartbeats) but no database."""
    holder: dict[str, MediaNode] = {}

    @asynccontextmanager
    async def run_node(app: Starlette, resources: Resources) -> AsyncIterator[None]:
        node = MediaNode(resources.settings, resources.registry)
        app.state.media_node = node
        holder["node"] = node
        await node.start()
        try:
            yield
        finally:
            # uvicorn runs this on SIGTERM: the node drains (its rooms move), then stops.
            await node.stop()

    async def takes_rooms() -> bool:
        node = holder.get("node")
        return node is not None and node.ready()

    return build_service(
        "media",
        settings,
        routes=offer_route.routes,
        uses_database=False,
        extra=run_node,
        readiness={"takes_rooms": takes_rooms},
    )
