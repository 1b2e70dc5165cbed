"""The media service: WebRTC signalling and audio mixing rooms."""

from __future__ import annotations

from starlette.applications import Starlette

from config.settings import Settings
from web.service import build_service


def create_app(settings: Settings) -> Starlette:
    """Build the media service; it needs Kafka (call events) but no database."""
    return build_service("media", settings, routes=[], uses_database=False)
