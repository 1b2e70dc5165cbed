"""The commands service: accounts, sessions, teams and client commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from commands import accounts, client_commands, teams
from commands.openapi import OPERATIONS
from commands.outcomes import OutcomeWaiter
from commands.pending import PendingRecorder
from commands.publisher import CommandPublisher
from config.settings import Settings
from web.openapi import openapi_route
from web.service import Resources, build_service


@asynccontextmanager
async def _command_path(app: Starlette, resources: Resources) -> AsyncIterator[None]:
    settings = resources.settings
    publisher = await asyncio.to_thread(
        CommandPublisher, settings.require_kafka(), settings.topics.commands
    )
    waiter = OutcomeWaiter(resources.require_engine(), settings.require_database())
    await waiter.start()
    pending = PendingRecorder(resources.require_engine())
    pending.start()
    resources.extras["publisher"] = publisher
    resources.extras["outcomes"] = waiter
    resources.extras["pending"] = pending
    try:
        yield
    finally:
        await pending.close()
        await waiter.close()
        await asyncio.to_thread(publisher.close)


def create_app(settings: Settings) -> Starlette:
    """Build the commands service; connections open in its lifespan."""
    routes = [*accounts.routes, *teams.routes, *client_commands.routes]
    return build_service(
        "commands",
        settings,
        routes=[*routes, openapi_route("Chorus commands", OPERATIONS)],
        extra=_command_path,
    )
