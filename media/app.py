"""The media service: WebRTC signalling and audio mixing rooms, placed from call events."""

from __future__ import annotations

from starlette.applications import Starlette

from config.settings import Settings
from media import offer_route
from media.state import open_media_state, takes_rooms
from web.service import build_service, kafka_ready


def create_app(settings: Settings) -> Starlette:
    """Build the media service; it needs Kafka (call events, heartbeats) but no database."""
    return build_service(
        "media",
        settings,
        routes=offer_route.routes,
        open_state=open_media_state,
        checks={"kafka": kafka_ready, "takes_rooms": takes_rooms},
    )
