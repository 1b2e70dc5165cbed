"""What the commands service holds while it runs: its connections, listeners and caches."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from cachetools import TTLCache
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request

from auth.cache import VerifiedTokens, call_team_cache, forget_ended_memberships, membership_cache
from commands.backlog import Backlog
from commands.outcomes import OutcomeWaiter
from commands.pending import PendingRecorder
from commands.publisher import CommandPublisher
from commands.retention import Pruner
from config.settings import Settings
from web.service import ServiceState, database_engine, state_of


@dataclass
class CommandsState(ServiceState):
    engine: AsyncEngine
    # The same pool, each statement its own transaction: no BEGIN and COMMIT round trips for
    # the single statements of a command's path (keys, membership reads, pending rows).
    autocommit: AsyncEngine
    publisher: CommandPublisher
    outcomes: OutcomeWaiter
    backlog: Backlog  # appended, not yet heard decided: at its limit, 503 overloaded
    pending: PendingRecorder
    members: TTLCache[tuple[str, str], str]  # (team id, user id) -> role
    call_teams: TTLCache[str, str]  # call id -> team id


@asynccontextmanager
async def open_commands_state(
    settings: Settings, registry: CollectorRegistry
) -> AsyncIterator[CommandsState]:
    """Connect to the database and Kafka and start the listeners; all closed on exit."""
    async with AsyncExitStack() as stack:
        engine = await stack.enter_async_context(database_engine(settings))
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        publisher = await asyncio.to_thread(
            CommandPublisher, settings.require_kafka(), settings.topics.commands
        )
        stack.push_async_callback(asyncio.to_thread, publisher.close)
        backlog = Backlog(settings.commands_backlog, registry)
        outcomes = OutcomeWaiter(autocommit, settings.require_database(), backlog)
        await outcomes.start()
        stack.push_async_callback(outcomes.close)
        pending = PendingRecorder(autocommit)
        pending.start()
        stack.push_async_callback(pending.close)
        pruner = Pruner(engine, registry)
        pruner.start()
        stack.push_async_callback(pruner.close)
        tokens, members = VerifiedTokens(settings.require_secret), membership_cache()
        forget_ended_memberships(tokens.revocations, members)
        yield CommandsState(
            settings=settings,
            tokens=tokens,
            engine=engine,
            autocommit=autocommit,
            publisher=publisher,
            outcomes=outcomes,
            backlog=backlog,
            pending=pending,
            members=members,
            call_teams=call_team_cache(),
        )


def commands_state(request: Request) -> CommandsState:
    """The state of the commands service serving `request`."""
    return state_of(request, CommandsState)
