"""The commands service: accounts, sessions, teams and client commands."""

from __future__ import annotations

from starlette.applications import Starlette

from commands import accounts, client_commands, password_resets, teams
from commands.openapi import OPERATIONS
from commands.state import open_commands_state
from config.settings import Settings
from web.openapi import openapi_route
from web.service import build_service, database_ready, kafka_ready


def create_app(settings: Settings) -> Starlette:
    """Build the commands service; connections open in its lifespan."""
    # Starlette tries routes in order: the commands, most of the traffic, first (no path of
    # one group matches another's).
    routes = [*client_commands.routes, *accounts.routes, *password_resets.routes, *teams.routes]
    return build_service(
        "commands",
        settings,
        routes=[*routes, openapi_route("Chorus commands", OPERATIONS)],
        open_state=open_commands_state,
        checks={"kafka": kafka_ready, "database": database_ready},
    )
