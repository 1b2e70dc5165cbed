"""`?after=`: a read waits for the team's read model to include a position a write returned."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from auth.cache import VerifiedTokens, membership_cache
from auth.revocations import Revocations
from config.settings import Settings
from queries import positions
from queries.callers import LiveCallers
from queries.decisions import Decisions
from queries.hub import ChangeHub
from queries.positions import wait_for_position
from queries.state import QueriesState
from tests.fakedb import ScriptedEngine, row
from web.errors import Problem

TEAM = "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d"


@dataclass
class FakeHub:
    """The hub's side of `?after=`: whether a team reached a seq, and the decisions heard."""

    arrives: bool = True
    asked: list[tuple[str, int, float]] = field(default_factory=list)
    decisions: Decisions = field(default_factory=Decisions)

    async def reached(self, team_id: str, seq: int, timeout: float) -> bool:
        self.asked.append((team_id, seq, timeout))
        return self.arrives


def _request(tmp_path: Path, after: str | None, hub: FakeHub, engine: ScriptedEngine) -> Request:
    app = Starlette()
    app.state.service = QueriesState(
        settings=Settings(data_dir=tmp_path, secret="s"),
        tokens=VerifiedTokens(lambda: "s"),
        engine=engine.typed(),
        hub=cast(ChangeHub, hub),
        callers=LiveCallers(Revocations()),
        members=membership_cache(),
    )
    query = b"" if after is None else b"after=" + after.encode()
    return Request({"type": "http", "query_string": query, "headers": [], "app": app})


def _outcome(status: str, position: str) -> Any:
    return row(command_id="cmd", status=status, position=position)


async def test_without_after_nothing_is_awaited(tmp_path: Path) -> None:
    hub = FakeHub()

    await wait_for_position(_request(tmp_path, None, hub, ScriptedEngine()), TEAM)

    assert hub.asked == []


@pytest.mark.parametrize("after", ["", "soon", "c1", "-3", "c1.2.3"])
async def test_a_position_chorus_did_not_give_is_a_bad_request(tmp_path: Path, after: str) -> None:
    with pytest.raises(Problem) as refused:
        await wait_for_position(_request(tmp_path, after, FakeHub(), ScriptedEngine()), TEAM)

    assert (refused.value.status, refused.value.code) == (400, "bad_position")


async def test_a_team_seq_is_awaited_for_at_most_ten_seconds(tmp_path: Path) -> None:
    hub = FakeHub()

    await wait_for_position(_request(tmp_path, "42", hub, ScriptedEngine()), TEAM)

    [(team_id, seq, timeout)] = hub.asked
    assert (team_id, seq) == (TEAM, 42)
    assert 9.0 < timeout <= 10.0


async def test_a_read_model_that_does_not_get_there_is_a_timeout(tmp_path: Path) -> None:
    with pytest.raises(Problem) as late:
        await wait_for_position(
            _request(tmp_path, "42", FakeHub(arrives=False), ScriptedEngine()), TEAM
        )

    assert (late.value.status, late.value.code) == (504, "timeout")


async def test_a_command_position_waits_for_the_seq_its_decision_reached(tmp_path: Path) -> None:
    hub = FakeHub()
    engine = ScriptedEngine([_outcome("accepted", "17")])

    await wait_for_position(_request(tmp_path, "c2.40", hub, engine), TEAM)

    assert [seq for _, seq, _ in hub.asked] == [17]
    [(lookup, _)] = engine.executed
    assert set(lookup.compile().params.values()) == {"c2.40", TEAM}


async def test_a_command_not_yet_decided_is_awaited_until_its_outcome_is_heard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "RECHECK_SECONDS", 60.0)  # only the notification wakes it
    hub = FakeHub()
    pending, decided = _outcome("pending", "c2.40"), _outcome("accepted", "17")
    engine = ScriptedEngine([pending], [pending], [decided])
    waiting = asyncio.create_task(wait_for_position(_request(tmp_path, "c2.40", hub, engine), TEAM))
    while hub.decisions.waiting_count() == 0:
        await asyncio.sleep(0)

    hub.decisions.recorded("cmd")

    await asyncio.wait_for(waiting, 2.0)
    assert [seq for _, seq, _ in hub.asked] == [17]


async def test_a_command_never_decided_is_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "AFTER_TIMEOUT_SECONDS", 0.05)
    engine = ScriptedEngine(*[[_outcome("pending", "c2.40")]] * 100)

    with pytest.raises(Problem) as late:
        await asyncio.wait_for(
            wait_for_position(_request(tmp_path, "c2.40", FakeHub(), engine), TEAM), 2.0
        )

    assert (late.value.status, late.value.code) == (504, "timeout")
