"""Idempotency-Key: keys bounded, requests fingerprinted, a key's first use decides its repeats."""

from __future__ import annotations

import pytest

from commands import idempotency
from commands.idempotency import Claim, KeyReleased, claim, request_fingerprint, validate_key
from tests.fakedb import ScriptedEngine, row
from web.errors import Problem

USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"
BODY = b'{"status": "online", "device_id": "d1"}'
PATH = "/v1/teams/t/presence"


def test_no_key_is_no_key() -> None:
    assert validate_key(None) is None


@pytest.mark.parametrize("key", ["k", "a" * idempotency.MAX_KEY_LENGTH, "ключ ✓ with spaces"])
def test_a_key_of_1_to_200_characters_is_taken_as_it_is(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "a" * (idempotency.MAX_KEY_LENGTH + 1)])
def test_an_empty_or_too_long_key_is_refused(key: str) -> None:
    with pytest.raises(Problem) as refused:
        validate_key(key)
    assert (refused.value.status, refused.value.code) == (422, "invalid_idempotency_key")


def test_the_same_request_has_the_same_fingerprint() -> None:
    assert request_fingerprint("POST", PATH, BODY) == request_fingerprint("POST", PATH, BODY)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", PATH, b'{"status": "away", "device_id": "d1"}'),
        ("POST", "/v1/teams/u/presence", BODY),
        ("PUT", PATH, BODY),
    ],
)
def test_another_method_path_or_body_has_another_fingerprint(
    method: str, path: str, body: bytes
) -> None:
    assert request_fingerprint(method, path, body) != request_fingerprint("POST", PATH, BODY)


async def test_the_first_use_of_a_key_owns_it_with_the_new_command_id() -> None:
    engine = ScriptedEngine([row(command_id="new")])  # inserted (or an expired key taken over)

    taken = await claim(engine.typed(), USER, "k", "fp", "new")

    assert taken == Claim(command_id="new", answer=None, owner=True)
    assert engine.transactions == 1


async def test_a_repeat_gets_the_first_command_id_and_its_answer() -> None:
    answer = {"command_id": "first", "position": "c0.7"}
    stored = row(request_hash="fp", command_id="first", response=answer)
    engine = ScriptedEngine([], [stored])  # the insert conflicts: the key is taken

    repeat = await claim(engine.typed(), USER, "k", "fp", "new")

    assert repeat == Claim(command_id="first", answer=answer, owner=False)


async def test_a_reused_key_with_another_request_is_refused() -> None:
    stored = row(request_hash="other", command_id="first", response={"command_id": "first"})
    engine = ScriptedEngine([], [stored])

    with pytest.raises(Problem) as refused:
        await claim(engine.typed(), USER, "k", "fp", "new")

    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")


async def test_a_repeat_waits_for_the_owners_answer() -> None:
    unanswered = row(request_hash="fp", command_id="first", response=None)
    answered = row(request_hash="fp", command_id="first", response={"command_id": "first"})
    engine = ScriptedEngine([], [unanswered], [unanswered], [answered])

    repeat = await claim(engine.typed(), USER, "k", "fp", "new")

    assert repeat == Claim(command_id="first", answer={"command_id": "first"}, owner=False)
    assert not engine.results  # it read until the answer came


async def test_a_repeat_whose_owner_never_answers_appends_the_same_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(idempotency, "OWNER_GRACE_SECONDS", 0.0)
    unanswered = row(request_hash="fp", command_id="first", response=None)
    engine = ScriptedEngine([], [unanswered])

    repeat = await claim(engine.typed(), USER, "k", "fp", "new")

    assert repeat == Claim(command_id="first", answer=None, owner=False)


async def test_a_key_given_back_by_its_failed_owner_is_released() -> None:
    engine = ScriptedEngine([], [])  # taken when inserting, gone when read

    with pytest.raises(KeyReleased):
        await claim(engine.typed(), USER, "k", "fp", "new")
