"""The admin service: operators' sign-in and read-only inspection (support edits, the audit
log and the metrics page are still to come: see README, "Admin service (in progress)")."""

from __future__ import annotations

from starlette.applications import Starlette

from admin import inspection, sessions
from admin.openapi import OPERATIONS
from admin.state import AdminState, open_admin_state
from config.settings import Settings
from web.openapi import openapi_route
from web.service import StateCheck, build_service, database_ready


def create_app(settings: Settings) -> Starlette:
    """Build the admin service; its database engine opens in its lifespan."""
    checks: dict[str, StateCheck[AdminState]] = {"database": database_ready}
    return build_service(
        "admin",
        settings,
        routes=[
            *sessions.routes,
            *inspection.routes,
            openapi_route("Chorus admin", OPERATIONS),
        ],
        open_state=open_admin_state,
        checks=checks,
    )
