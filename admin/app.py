"""The admin service: operators' sign-in, inspection, the event timeline, media rooms, support
edits recorded in the audit log, the sampled metrics and the server-rendered page (`/admin`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from admin import account_edits, audit_view, inspection, sessions, team_edits, timeline
from admin.media_view import MediaWatch, media_routes
from admin.metrics import SAMPLE_SECONDS, Sampler
from admin.metrics_panels import metrics_routes
from admin.metrics_store import MetricsStore
from admin.openapi import OPERATIONS
from admin.page import page_routes
from admin.state import AdminState, open_admin_state
from config.settings import Settings
from web.openapi import openapi_route
from web.service import StateCheck, build_service, database_ready, kafka_ready


def create_app(settings: Settings, sample_seconds: float = SAMPLE_SECONDS) -> Starlette:
    """Build the admin service; its database engine, log readers and sampler start in its
    lifespan."""
    checks: dict[str, StateCheck[AdminState]] = {"database": database_ready, "kafka": kafka_ready}
    store = MetricsStore(sample_seconds)
    media = MediaWatch(settings)
    sampler = Sampler(settings, store, media)

    @asynccontextmanager
    async def open_state(
        settings: Settings, registry: CollectorRegistry
    ) -> AsyncIterator[AdminState]:
        async with (
            open_admin_state(settings, registry) as state,
            media.running(),
            sampler.running(state.engine, registry, sample_seconds),
        ):
            yield state

    return build_service(
        "admin",
        settings,
        routes=[
            *sessions.routes,
            *inspection.routes,
            *timeline.routes,
            *media_routes(media),
            *metrics_routes(store),
            *account_edits.routes,
            *team_edits.routes,
            *audit_view.routes,
            *page_routes(store),
            openapi_route("Chorus admin", OPERATIONS),
        ],
        open_state=open_state,
        checks=checks,
    )
