"""The media service: WebRTC signalling and audio mixing rooms."""

from __future__ import annotations

from starlette.applications import Starlette

from config.settings import Settings
from media.state import open_media_state
from web.service import build_service, kafka_ready


def create_app(settings: Settings) -> Starlette:
    """Build the media service; it needs Kafka (call events) but no database."""
    return build_service(
        "media", settings, routes=[], open_state=open_media_state, checks={"kafka": kafka_ready}
    )
