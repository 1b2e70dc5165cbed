"""Reads that see one instant of the database: a position and the rows it covers, together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Every statement of a REPEATABLE READ transaction sees the same snapshot; under the default
# READ COMMITTED a write committed between two reads would show in the second only.
ISOLATION = "REPEATABLE READ"


@asynccontextmanager
async def snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction whose reads all see the same committed state."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level=ISOLATION)
        async with conn.begin():
            yield conn


@contextmanager
def snapshot_sync(engine: Engine) -> Iterator[Connection]:
    """`snapshot` for synchronous tools."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level=ISOLATION)
        with conn.begin():
            yield conn
