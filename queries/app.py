"""The queries service: read models over HTTP and live queries over server-sent events."""

from __future__ import annotations

from starlette.applications import Starlette

from infra.service import build_service
from infra.settings import Settings


def create_app(settings: Settings) -> Starlette:
    """Build the queries service; connections open in its lifespan."""
    return build_service("queries", settings, routes=[])
