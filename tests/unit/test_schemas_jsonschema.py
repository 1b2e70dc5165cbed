"""The generated JSON Schemas: checked in, current, and true to the records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.commands import StartCall
from schemas.jsonschema import SCHEMA_DIR, differences, main, render_all, write
from schemas.mapper import MAPPER
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command

jsonschema = pytest.importorskip("jsonschema")


def schema(path: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMA_DIR / path).read_text(encoding="utf-8"))
    return loaded


def test_the_checked_in_files_are_what_the_code_generates() -> None:
    for path, text in render_all().items():
        assert (SCHEMA_DIR / path).read_text(encoding="utf-8") == text, f"run --write ({path})"
    assert differences() == []
    assert main(["--check"]) == 0


def test_check_fails_on_a_changed_missing_or_stale_file(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "events" / "call.ended.json").write_text("{}")
    (tmp_path / "commands" / "presence.set.json").unlink()
    (tmp_path / "events" / "old.type.json").write_text("{}")

    assert differences(tmp_path) == [
        "missing: commands/presence.set.json",
        "stale: events/old.type.json",
        "differs: events/call.ended.json",
    ]
    assert main(["--check", "--dir", str(tmp_path)]) == 1
    assert main(["--write", "--dir", str(tmp_path)]) == 0
    assert differences(tmp_path) == []


def test_there_is_one_schema_per_type_and_envelope() -> None:
    names = set(render_all())

    assert {"command-envelope.json", "event-envelope.json"} <= names
    assert {f"commands/{n}.json" for n, _, _ in MAPPER.commands.types()} <= names
    assert {f"events/{n}.json" for n, _, _ in MAPPER.events.types()} <= names


def test_every_file_is_a_valid_json_schema() -> None:
    for path in render_all():
        jsonschema.Draft202012Validator.check_schema(schema(path))


def test_decided_records_validate_against_their_schemas() -> None:
    state = TeamState()
    for each in [
        command("alice", StartCall(call_id="c1", invitees=("bob",), topic="hi")),
        command("alice", StartCall(call_id="c2")),
    ]:
        records, state = decide_and_seal(state, each)
        for record in records:
            jsonschema.validate(record, schema(f"events/{record['type']}.json"))
            jsonschema.validate(record, schema("event-envelope.json"))


def test_a_record_breaking_its_schema_fails_validation() -> None:
    records, _ = decide_and_seal(TeamState(), command("alice", StartCall(call_id="c1")))
    broken = {**records[0], "data": {**records[0]["data"], "invitees": "bob"}}

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema("events/call.started.json"))


def test_commands_validate_against_their_schemas() -> None:
    start = command("alice", StartCall(call_id="c1", invitees=("bob",)))
    encoded = MAPPER.encode_command(start)

    jsonschema.validate(encoded, schema("commands/call.start.json"))
    jsonschema.validate(encoded, schema("command-envelope.json"))
