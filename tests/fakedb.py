"""A scripted stand-in for an AsyncEngine, for unit tests of code around its queries.

Each `execute` records the statement (and its parameters) and returns the next scripted result;
what the SQL itself does is the integration tests' business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncEngine


def row(**columns: Any) -> Any:
    """A result row with these columns as attributes."""
    return SimpleNamespace(**columns)


class FakeResult:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        first = self.first()
        return None if first is None else next(iter(vars(first).values()))

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class FakeConnection:
    def __init__(self, engine: ScriptedEngine) -> None:
        self._engine = engine

    async def execution_options(self, **options: Any) -> FakeConnection:
        self._engine.options.update(options)
        return self

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        self._engine.transactions += 1
        yield

    async def execute(self, statement: Any, parameters: Any = None) -> FakeResult:
        self._engine.executed.append((statement, parameters))
        if not self._engine.results:
            return FakeResult([])
        result = self._engine.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return FakeResult(list(result))


class ScriptedEngine:
    """Answers each statement with the next of `results` (rows, or an exception to raise)."""

    def __init__(self, *results: list[Any] | Exception) -> None:
        self.results: list[list[Any] | Exception] = list(results)
        self.executed: list[tuple[Any, Any]] = []
        self.transactions = 0
        self.options: dict[str, Any] = {}  # execution options asked for on a connection

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[FakeConnection]:
        yield FakeConnection(self)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[FakeConnection]:
        self.transactions += 1
        yield FakeConnection(self)

    def typed(self) -> AsyncEngine:
        """This fake where an AsyncEngine is expected."""
        return cast(AsyncEngine, self)
