"""Sign-in throttling per e-mail and source address: users' sign-in and operators' share it.

Attempts are counted before the password is checked (a success starts the count again): the
first are free, then each waits longer, then 429. Per source, so that a stranger who knows an
address cannot lock its owner out from elsewhere. Each kind of sign-in keeps its counts in a
table of its own, shaped as `db.tables.signin_failures`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth.passwords import DUMMY_HASH, password_matches
from web.errors import Problem

FREE_FAILURES = 3
BLOCK_AFTER_FAILURES = 10
FAILURE_WINDOW = timedelta(minutes=15)


class SigninThrottle:
    """Counts sign-in attempts in `table` (email, source, failures, last_failure_at)."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    async def count(self, engine: AsyncEngine, email: str, source: str) -> int:
        """Count this attempt; 429 past BLOCK_AFTER_FAILURES. Returns its number.

        Counted in one statement before the password is checked: parallel attempts each get
        their own count, so no more than BLOCK_AFTER_FAILURES passwords are ever checked.
        """
        async with engine.begin() as conn:
            attempts = await self._count_attempt(conn, email, source)
        if attempts > BLOCK_AFTER_FAILURES:
            raise Problem(
                429,
                "too_many_attempts",
                "too many failed sign-ins for this e-mail from this address; "
                "try again in 15 minutes",
                headers={"Retry-After": str(int(FAILURE_WINDOW.total_seconds()))},
            )
        return attempts

    async def check_password(
        self, engine: AsyncEngine, email: str, source: str, stored_hash: str | None, password: str
    ) -> bool:
        """Count this attempt (429 past the limit), slow it down, then check the password.

        `stored_hash` is None for an unknown e-mail: a dummy hash is checked so that the answer
        takes as long, and the attempt is refused.
        """
        attempts = await self.count(engine, email, source)
        await self.slow_down(attempts)
        matches = await asyncio.to_thread(password_matches, stored_hash or DUMMY_HASH, password)
        return matches and stored_hash is not None

    @staticmethod
    async def slow_down(attempts: int) -> None:
        """Past the free attempts, each one waits longer (up to 2 s)."""
        if attempts > FREE_FAILURES:
            await asyncio.sleep(min(0.25 * (attempts - FREE_FAILURES), 2.0))

    async def forget(self, engine: AsyncEngine, email: str, source: str) -> None:
        """A successful sign-in starts the count again."""
        table = self.table
        async with engine.begin() as conn:
            await conn.execute(
                sa.delete(table).where(table.c.email == email, table.c.source == source)
            )

    async def _count_attempt(self, conn: AsyncConnection, email: str, source: str) -> int:
        """This attempt's number among the recent ones for (e-mail, source), counting it."""
        table = self.table
        now = datetime.now(UTC)
        statement = insert(table).values(
            email=email, source=source, failures=1, last_failure_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.email, table.c.source],
            set_={
                # An attempt after a quiet window starts the count again.
                "failures": sa.case(
                    (table.c.last_failure_at < now - FAILURE_WINDOW, 1),
                    else_=table.c.failures + 1,
                ),
                "last_failure_at": now,
            },
        )
        counted = await conn.execute(statement.returning(table.c.failures))
        return int(counted.scalar_one())
