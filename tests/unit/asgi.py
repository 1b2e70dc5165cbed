"""An in-process HTTP client for the Starlette glue's unit tests (no server, no socket)."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp


def client(app: ASGIApp, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An httpx client that calls `app` directly through ASGI."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")
