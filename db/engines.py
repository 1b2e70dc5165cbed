"""Database adapter: engines and schema migrations (Alembic), no connection at import time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    # Alembic (and Mako under it) is imported where migrations run, not by every service and
    # worker that only needs an engine: it is a fifth of a worker's imports.
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# NOTIFY channels between the worker (writer) and the services (listeners).
# Payload: a decided command's id; for one accepted with no events (a lease refreshed), followed
# by a space and its position, which is then its whole outcome (db/outcomes.py `outcome_notice`).
OUTCOMES_CHANNEL = "command_outcomes"
CHANGES_CHANNEL = "rm_changes"  # payload: "<team_id>:<seq>" of a projected event
# A database that is down must make callers fail fast (503), not hang.
CONNECT_TIMEOUT_SECONDS = 3


def make_engine(url: str) -> Engine:
    """A synchronous engine for tools and migrations."""
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    )


def make_async_engine(
    url: str, pool_size: int = 20, pool_timeout: float = CONNECT_TIMEOUT_SECONDS
) -> AsyncEngine:
    """An asyncio engine for the services (psycopg 3).

    Connections past `pool_size` are closed when given back, and each new one costs a SCRAM
    handshake (milliseconds of CPU): the pool is sized so that a burst of a few hundred
    requests reuses its connections rather than opening and closing them by the hundred.
    """
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_timeout=pool_timeout,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would read '%' in an encoded password as a directive.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Upgrade the database to the newest schema; existing data is kept."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
            if exists is None:
                return None
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


async def database_reachable(engine: AsyncEngine) -> bool:
    """True when a trivial query answers."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return True
