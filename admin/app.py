"""The admin service: operators' sign-in, inspection, and support edits recorded in the audit
log (the metrics page is still to come: see README, "Admin service (in progress)")."""

from __future__ import annotations

from starlette.applications import Starlette

from admin import account_edits, audit_view, inspection, sessions, team_edits
from admin.openapi import OPERATIONS
from admin.state import AdminState, open_admin_state
from config.settings import Settings
from web.openapi import openapi_route
from web.service import StateCheck, build_service, database_ready, kafka_ready


def create_app(settings: Settings) -> Starlette:
    """Build the admin service; its database engine opens in its lifespan."""
    checks: dict[str, StateCheck[AdminState]] = {"database": database_ready, "kafka": kafka_ready}
    return build_service(
        "admin",
        settings,
        routes=[
            *sessions.routes,
            *inspection.routes,
            *account_edits.routes,
            *team_edits.routes,
            *audit_view.routes,
            openapi_route("Chorus admin", OPERATIONS),
        ],
        open_state=open_admin_state,
        checks=checks,
    )
