"""The commands service: accounts, sessions, teams and client commands."""

from __future__ import annotations

from starlette.applications import Starlette

from infra.service import build_service
from infra.settings import Settings


def create_app(settings: Settings) -> Starlette:
    """Build the commands service; connections open in its lifespan."""
    return build_service("commands", settings, routes=[])
