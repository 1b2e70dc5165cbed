"""JSON Schemas of every command and event, generated from the code and kept in the repo.

    python -m schemas.jsonschema --write   # regenerate schemas/json/
    python -m schemas.jsonschema --check   # exit 1 if schemas/json/ differs from the code

One file per envelope (`command-envelope.json`, `event-envelope.json`) and one per type
(`commands/call.start.json`, `events/call.started.json`...), each validating a whole record of
that type at its current version; and one for each record of the audit and revocations topics
(`audit-record.json`, `revocation.json`).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas.audit import AuditRecord, Revocation
from schemas.commands import CommandEnvelope
from schemas.envelope import EventEnvelope
from schemas.mapper import MAPPER

#: Where the generated files live (checked in).
SCHEMA_DIR = Path(__file__).resolve().parent / "json"

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_REF = "#/$defs/{name}"


def render_all() -> dict[str, str]:
    """Every schema file's text, by its path relative to `SCHEMA_DIR`."""
    files = {
        "command-envelope.json": _envelope_schema(CommandEnvelope, "command envelope"),
        "event-envelope.json": _envelope_schema(EventEnvelope, "event envelope"),
        "audit-record.json": _envelope_schema(AuditRecord, "audit record"),
        "revocation.json": _envelope_schema(Revocation, "revocation"),
    }
    for name, command_cls, version in MAPPER.commands.types():
        files[f"commands/{name}.json"] = _typed_schema(CommandEnvelope, command_cls, name, version)
    for name, event_cls, version in MAPPER.events.types():
        files[f"events/{name}.json"] = _typed_schema(EventEnvelope, event_cls, name, version)
    return {path: _render(schema) for path, schema in sorted(files.items())}


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write every schema file and remove stale ones; the paths that changed."""
    wanted = render_all()
    changed = differences(directory, wanted)
    for path in _existing(directory) - wanted.keys():
        (directory / path).unlink()
    for path, text in wanted.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    return changed


def differences(directory: Path = SCHEMA_DIR, wanted: dict[str, str] | None = None) -> list[str]:
    """What differs between the files in `directory` and the code, one line per file."""
    wanted = render_all() if wanted is None else wanted
    existing = _existing(directory)
    lines = [f"missing: {path}" for path in sorted(wanted.keys() - existing)]
    lines += [f"stale: {path}" for path in sorted(existing - wanted.keys())]
    lines += [
        f"differs: {path}"
        for path in sorted(wanted.keys() & existing)
        if (directory / path).read_text(encoding="utf-8") != wanted[path]
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: --write regenerates the files, --check fails if they are out of date."""
    parser = argparse.ArgumentParser(prog="python -m schemas.jsonschema", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the schema files")
    action.add_argument("--check", action="store_true", help="exit 1 if they are out of date")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        for line in write(args.dir):
            print(f"wrote ({line})")
        return 0
    problems = differences(args.dir)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print("run: python -m schemas.jsonschema --write", file=sys.stderr)
    return 1 if problems else 0


def _envelope_schema(envelope: type[msgspec.Struct], title: str) -> dict[str, Any]:
    (ref,), defs = msgspec.json.schema_components([envelope], ref_template=_REF)
    return {"$schema": _DIALECT, "title": title, **ref, "$defs": defs}


def _typed_schema(
    envelope: type[msgspec.Struct], payload: type[msgspec.Struct], name: str, version: int
) -> dict[str, Any]:
    (envelope_ref, data_ref), defs = msgspec.json.schema_components(
        [envelope, payload], ref_template=_REF
    )
    return {
        "$schema": _DIALECT,
        "title": name,
        "description": inspect.getdoc(payload) or name,
        "allOf": [envelope_ref],
        "properties": {"type": {"const": name}, "version": {"const": version}, "data": data_ref},
        "$defs": defs,
    }


def _render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _existing(directory: Path) -> set[str]:
    if not directory.is_dir():
        return set()
    return {path.relative_to(directory).as_posix() for path in directory.rglob("*.json")}


if __name__ == "__main__":
    sys.exit(main())
