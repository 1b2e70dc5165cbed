"""The queries service: read models over HTTP and live queries over server-sent events."""

from __future__ import annotations

from starlette.applications import Starlette

from config.settings import Settings
from queries import live, reads
from queries.openapi import OPERATIONS
from queries.state import QueriesState, open_queries_state
from queries.stream import ServerSend
from web.openapi import openapi_route
from web.service import StateCheck, build_service, database_ready


def create_app(settings: Settings) -> Starlette:
    """Build the queries service; connections open in its lifespan."""
    # Reads and live queries come from PostgreSQL alone: a Kafka outage does not stop them.
    checks: dict[str, StateCheck[QueriesState]] = {"database": database_ready}
    app = build_service(
        "queries",
        settings,
        routes=[*reads.routes, *live.routes, openapi_route("Chorus queries", OPERATIONS)],
        open_state=open_queries_state,
        checks=checks,
    )
    app.add_middleware(ServerSend)  # live streams write their frames past the others
    return app
