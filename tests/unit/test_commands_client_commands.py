"""Client commands through the commands service in-process, its collaborators in memory.

Kafka, the outcome listener and the pending recorder are fakes behind the service's typed
state; the database is a scripted stand-in (tests/fakedb.py). Memberships and call teams are
already in the state's caches, so no handler has to ask the database who may do what.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request

from auth.cache import VerifiedTokens, call_team_cache, membership_cache
from auth.tokens import encode_token, new_identity
from commands import client_commands, idempotency
from commands.backlog import Backlog
from commands.client_commands import call_id_for
from commands.outcomes import OutcomeWaiter
from commands.pending import PendingRecorder
from commands.publisher import CommandPublisher
from commands.state import CommandsState
from config.settings import Settings
from schemas.clock import parse_time
from schemas.commands import Command, JoinCall, SetMuted, SetPresence, StartCall
from schemas.mapper import MAPPER
from tests.asgi import started
from tests.fakedb import ScriptedEngine, row
from web.service import build_service

SECRET = "the-service-secret-of-at-least-32-bytes"
USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"
TEAM = "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d"
CALL = "7d4c3b2a-1f0e-4d9c-8b7a-6f5e4d3c2b1a"
PRESENCE = f"/v1/teams/{TEAM}/presence"
ONLINE = {"status": "available", "device_id": "laptop"}


@dataclass
class FakePublisher:
    """The commands topic: appends in order, positions c0.0, c0.1, ..."""

    appended: list[tuple[str, bytes]] = field(default_factory=list)

    async def append(self, team_id: str, value: bytes) -> str:
        self.appended.append((team_id, value))
        return f"c0.{len(self.appended) - 1}"

    def commands(self) -> list[Command]:
        return [MAPPER.decode_command(value) for _, value in self.appended]


@dataclass
class FakeOutcomes:
    """The outcome listener: every wait finds `decided` (None: still pending)."""

    decided: Any = None
    waits: list[tuple[str, float]] = field(default_factory=list)

    async def wait(self, command_id: str, timeout: float, expected: Any = None) -> Any:
        self.waits.append((command_id, timeout))
        return self.decided

    @contextmanager
    def expecting(self, command_id: str, wanted: bool = True) -> Iterator[None]:
        yield None


@dataclass
class FakePending:
    recorded: list[tuple[str, str, str, str]] = field(default_factory=list)

    def record(self, command_id: str, team_id: str, actor: str, position: str) -> None:
        self.recorded.append((command_id, team_id, actor, position))


@dataclass
class Fakes:
    engine: ScriptedEngine = field(default_factory=ScriptedEngine)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    outcomes: FakeOutcomes = field(default_factory=FakeOutcomes)
    pending: FakePending = field(default_factory=FakePending)
    backlog: Backlog = field(default_factory=lambda: Backlog(1000))

    def app(self, tmp_path: Path) -> Starlette:
        @asynccontextmanager
        async def open_state(
            settings: Settings, registry: CollectorRegistry
        ) -> AsyncIterator[CommandsState]:
            members = membership_cache()
            members[TEAM, USER] = "member"
            call_teams = call_team_cache()
            call_teams[CALL] = TEAM
            yield CommandsState(
                settings=settings,
                tokens=VerifiedTokens(lambda: SECRET),
                engine=self.engine.typed(),
                autocommit=self.engine.typed(),
                publisher=cast(CommandPublisher, self.publisher),
                outcomes=cast(OutcomeWaiter, self.outcomes),
                pending=cast(PendingRecorder, self.pending),
                backlog=self.backlog,
                members=members,
                call_teams=call_teams,
            )

        settings = Settings(data_dir=tmp_path, secret=SECRET)
        return build_service("commands", settings, client_commands.routes, open_state, {})

    async def post(
        self, tmp_path: Path, path: str, body: Any, **headers: str
    ) -> list[httpx.Response]:
        """POST `body` to `path` once per header set given (or once with none)."""
        return await self.requests(tmp_path, [("POST", path, body, headers)])

    async def requests(
        self, tmp_path: Path, calls: list[tuple[str, str, Any, dict[str, str]]]
    ) -> list[httpx.Response]:
        answers = []
        async with started(self.app(tmp_path)) as client:
            for method, path, body, headers in calls:
                answers.append(
                    await client.request(
                        method,
                        path,
                        json=body,
                        headers=_headers(headers),
                    )
                )
        return answers


def _headers(extra: dict[str, str]) -> dict[str, str]:
    token = encode_token(SECRET, new_identity(USER, 3600))
    return {"Authorization": f"Bearer {token}", **extra}


async def test_a_command_is_appended_keyed_by_team_and_answered_202(tmp_path: Path) -> None:
    fakes = Fakes()
    before = datetime.now(UTC)

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE)

    assert answer.status_code == 202
    command_id = answer.json()["command_id"]
    assert answer.json() == {"command_id": command_id, "position": "c0.0"}
    assert [team for team, _ in fakes.publisher.appended] == [TEAM]
    [command] = fakes.publisher.commands()
    assert (command.command_id, command.team_id, command.actor) == (command_id, TEAM, USER)
    assert command.data == SetPresence(status="available", device_id="laptop")
    received = parse_time(command.received_at)
    assert before - timedelta(milliseconds=1) <= received <= datetime.now(UTC)
    assert fakes.pending.recorded == [(command_id, TEAM, USER, "c0.0")]


async def test_each_accepted_command_waits_in_the_backlog_and_a_full_one_appends_nothing(
    tmp_path: Path,
) -> None:
    fakes = Fakes(backlog=Backlog(2))

    answers = await fakes.requests(tmp_path, [("POST", PRESENCE, ONLINE, {})] * 3)

    assert [answer.status_code for answer in answers] == [202, 202, 503]
    assert answers[2].json()["error"]["code"] == "overloaded"
    assert answers[2].headers["retry-after"] == "1"
    assert len(fakes.publisher.appended) == 2
    assert len(fakes.backlog) == 2


async def test_each_command_without_a_key_gets_a_new_id(tmp_path: Path) -> None:
    fakes = Fakes()

    answers = await fakes.requests(tmp_path, [("POST", PRESENCE, ONLINE, {})] * 2)

    ids = [answer.json()["command_id"] for answer in answers]
    assert len(set(ids)) == 2
    assert all(uuid.UUID(command_id).version == 4 for command_id in ids)


def test_command_ids_are_distinct_canonical_version_4_uuids_past_a_refill() -> None:
    new_id = client_commands._CommandIds()
    ids = [new_id() for _ in range(3 * new_id.BATCH + 1)]

    assert len(set(ids)) == len(ids)
    assert all(str(uuid.UUID(command_id)) == command_id for command_id in ids)
    assert {uuid.UUID(command_id).version for command_id in ids} == {4}
    assert {uuid.UUID(command_id).variant for command_id in ids} == {uuid.RFC_4122}


async def test_a_started_calls_id_follows_from_the_command_id(tmp_path: Path) -> None:
    fakes = Fakes()

    [answer] = await fakes.post(tmp_path, f"/v1/teams/{TEAM}/calls", {"invitees": []})

    assert answer.status_code == 202
    command_id, call_id = answer.json()["command_id"], answer.json()["call_id"]
    assert call_id == call_id_for(command_id)
    [command] = fakes.publisher.commands()
    assert command.data == StartCall(call_id=call_id, invitees=())
    # The call is in the directory (with its team) before the command is appended.
    [(directory_insert, _)] = fakes.engine.executed
    assert directory_insert.table.name == "call_directory"
    assert directory_insert.compile().params == {"call_id": call_id, "team_id": TEAM}


def test_a_call_id_is_a_fixed_function_of_the_command_id() -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    assert call_id_for(first) == call_id_for(first)
    assert call_id_for(first) != call_id_for(second)
    assert uuid.UUID(call_id_for(first)).version == 5


@pytest.mark.parametrize(
    ("action", "body", "payload"),
    [("join", {}, JoinCall(call_id=CALL)), ("mute", {"muted": True}, SetMuted(CALL, True))],
)
async def test_a_call_command_goes_to_the_calls_team(
    tmp_path: Path, action: str, body: dict[str, Any], payload: Any
) -> None:
    fakes = Fakes()

    [answer] = await fakes.post(tmp_path, f"/v1/calls/{CALL}/{action}", body)

    assert answer.status_code == 202
    [command] = fakes.publisher.commands()
    assert (command.team_id, command.data) == (TEAM, payload)


async def test_the_first_use_of_a_key_remembers_its_answer(tmp_path: Path) -> None:
    # The key inserted; then the answer stored.
    fakes = Fakes(engine=ScriptedEngine([row(command_id="ignored")], []))

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE, **{"Idempotency-Key": "k1"})

    assert answer.status_code == 202
    remembered = fakes.engine.executed[-1][1]
    assert remembered["answer"] == answer.json()
    assert len(fakes.publisher.appended) == 1


async def test_a_repeated_key_gets_the_first_answer_and_appends_nothing(tmp_path: Path) -> None:
    first = {"command_id": str(uuid.uuid4()), "position": "c0.9"}
    body = b'{"status":"available","device_id":"laptop"}'
    fingerprint = idempotency.request_fingerprint("POST", PRESENCE, body)
    stored = row(request_hash=fingerprint, command_id=first["command_id"], response=first)
    fakes = Fakes(engine=ScriptedEngine([], [stored]))  # the key is taken, answered

    async with started(fakes.app(tmp_path)) as client:
        answer = await client.post(
            PRESENCE,
            content=body,
            headers=_headers({"Idempotency-Key": "k1", "Content-Type": "application/json"}),
        )

    assert (answer.status_code, answer.json()) == (202, first)
    assert fakes.publisher.appended == []


async def test_a_repeat_whose_owner_died_appends_the_same_command_and_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "OWNER_GRACE_SECONDS", 0.0)
    owners_command = str(uuid.uuid4())
    body = b'{"invitees":[]}'
    fingerprint = idempotency.request_fingerprint("POST", f"/v1/teams/{TEAM}/calls", body)
    stored = row(request_hash=fingerprint, command_id=owners_command, response=None)
    fakes = Fakes(engine=ScriptedEngine([], [stored]))

    async with started(fakes.app(tmp_path)) as client:
        answer = await client.post(
            f"/v1/teams/{TEAM}/calls",
            content=body,
            headers=_headers({"Idempotency-Key": "k1", "Content-Type": "application/json"}),
        )

    assert answer.status_code == 202
    assert answer.json()["command_id"] == owners_command
    assert answer.json()["call_id"] == call_id_for(owners_command)
    [command] = fakes.publisher.commands()
    assert command.command_id == owners_command
    # Not the owner: the owner's answer is the one to remember, not this one.
    assert all(stmt.table.name != "idempotency_keys" for stmt, _ in fakes.engine.executed[3:])


async def test_a_key_too_long_is_refused_before_anything_is_appended(tmp_path: Path) -> None:
    fakes = Fakes()

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE, **{"Idempotency-Key": "k" * 201})

    assert (answer.status_code, answer.json()["error"]["code"]) == (422, "invalid_idempotency_key")
    assert fakes.publisher.appended == []


@pytest.mark.parametrize(
    ("prefer", "seconds"),
    [
        ("wait=3", 3.0),
        ("respond-async, WAIT = 2.5", 2.5),
        ("wait=600", 10.0),
        ("wait=-4", 0.0),
    ],
)
def test_prefer_wait_asks_for_seconds_within_bounds(prefer: str, seconds: float) -> None:
    assert client_commands._requested_wait(_with_prefer(prefer)) == seconds


@pytest.mark.parametrize("prefer", [None, "", "respond-async", "return=minimal"])
def test_without_prefer_wait_nothing_is_awaited(prefer: str | None) -> None:
    assert client_commands._requested_wait(_with_prefer(prefer)) == 0.0


def _with_prefer(prefer: str | None) -> Request:
    headers = [] if prefer is None else [(b"prefer", prefer.encode())]
    return Request({"type": "http", "method": "POST", "headers": headers})


async def test_prefer_wait_without_a_number_is_a_bad_request(tmp_path: Path) -> None:
    fakes = Fakes()

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE, Prefer="wait=soon")

    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_prefer")
    assert fakes.publisher.appended == []


async def test_an_accepted_outcome_within_the_wait_is_answered_200(tmp_path: Path) -> None:
    fakes = Fakes()
    fakes.outcomes.decided = row(
        command_id="x",
        status="accepted",
        position="17",
        events=[{"type": "presence.set"}],
        reason=None,
    )

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE, Prefer="wait=4")

    assert answer.status_code == 200
    body = answer.json()
    assert body == {
        "command_id": "x",
        "status": "accepted",
        "position": "17",
        "events": [{"type": "presence.set"}],
    }
    assert fakes.outcomes.waits == [(fakes.publisher.commands()[0].command_id, 4.0)]


async def test_a_rejected_outcome_within_the_wait_is_answered_409_with_its_reason(
    tmp_path: Path,
) -> None:
    fakes = Fakes()
    fakes.outcomes.decided = row(
        command_id="x", status="rejected", position="17", events=[], reason="not_in_call"
    )

    [answer] = await fakes.post(tmp_path, f"/v1/calls/{CALL}/leave", {}, Prefer="wait=1")

    assert answer.status_code == 409
    assert answer.json() == {
        "command_id": "x",
        "status": "rejected",
        "position": "17",
        "reason": "not_in_call",
    }


async def test_an_outcome_still_pending_after_the_wait_is_answered_202_pending(
    tmp_path: Path,
) -> None:
    fakes = Fakes()

    [answer] = await fakes.post(tmp_path, PRESENCE, ONLINE, Prefer="wait=1")

    command_id = answer.json()["command_id"]
    assert (answer.status_code, answer.json()) == (
        202,
        {"command_id": command_id, "position": "c0.0", "status": "pending"},
    )


async def test_a_command_is_shown_to_its_actor_only(tmp_path: Path) -> None:
    command_id = str(uuid.uuid4())
    outcome = row(
        command_id=command_id, actor=USER, status="pending", position="c0.1", events=[], reason=None
    )
    others = row(**{**vars(outcome), "actor": str(uuid.uuid4())})
    fakes = Fakes(engine=ScriptedEngine([outcome], [others], []))

    answers = await fakes.requests(tmp_path, [("GET", f"/v1/commands/{command_id}", None, {})] * 3)

    assert [answer.status_code for answer in answers] == [200, 404, 404]
    assert answers[0].json() == {
        "command_id": command_id,
        "status": "pending",
        "position": "c0.1",
        "events": [],
    }
    assert (
        answers[1].json()["error"]["code"]
        == answers[2].json()["error"]["code"]
        == "unknown_command"
    )
