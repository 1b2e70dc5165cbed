"""Starlette apps run in-process for unit tests: lifespan started, requests through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp


@asynccontextmanager
async def started(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` while its lifespan runs (started on entry, shut down on exit)."""
    async with app.router.lifespan_context(app), serving(app) as client:
        yield client


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` without its lifespan (as between process start and readiness)."""
    async with client(app) as http:
        yield http


def client(app: ASGIApp, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    """An httpx client that calls `app` directly through ASGI (no server, no socket)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")
