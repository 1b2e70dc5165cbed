"""A ChangeHub whose read model is in memory, for unit tests of the hub and of live queries.

The hub's two reads of the read model (`position`, `changes_after`) are served from a list of
changes per team; notifications arrive as the hub's listener hands them over (`_notified`).
"""

from __future__ import annotations

import asyncio

from queries.hub import ChangeHub, ChangeRow
from tests.fakedb import ScriptedEngine


class InMemoryHub(ChangeHub):
    """A ChangeHub over a list of changes per team."""

    def __init__(self, queue_limit: int = 1000) -> None:
        super().__init__(ScriptedEngine().typed(), "postgresql://unused/db", queue_limit)
        self.log: dict[str, list[ChangeRow]] = {}
        self.reads = 0

    def commit(self, team_id: str, *kinds: str) -> None:
        """The projector committed these changes and notified them."""
        changes = self.log.setdefault(team_id, [])
        for kind in kinds:
            changes.append(ChangeRow(len(changes) + 1, kind, {"n": len(changes) + 1}))
        self._notified(f"{team_id}:{len(changes)}")

    async def position(self, team_id: str) -> int:
        return len(self.log.get(team_id, []))

    async def changes_after(
        self, team_id: str, seq: int, limit: int | None = None
    ) -> list[ChangeRow]:
        self.reads += 1
        await asyncio.sleep(0)  # a read suspends, as a database's does
        return [c for c in self.log.get(team_id, []) if c.seq > seq][:limit]
