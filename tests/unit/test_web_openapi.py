"""OpenAPI documents from a list of operations: parameters, bodies by reference, security."""

from __future__ import annotations

from typing import Any

import jsonschema
import msgspec
import pytest
from starlette.applications import Starlette

from tests.asgi import client
from web.openapi import ERROR_STATUSES, Operation, openapi_document, openapi_route


class NewTeam(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class Mute(msgspec.Struct, forbid_unknown_fields=True):
    muted: bool


OPERATIONS = [
    Operation("post", "/v1/teams", "Create a team", 201, NewTeam),
    Operation(
        "get", "/v1/teams/{team_id}/calls", "The team's calls", 200, query=("state", "after")
    ),
    Operation("post", "/v1/calls/{call_id}/mute", "Mute or unmute", 202, Mute),
    Operation("post", "/v1/sessions", "Sign in", 201, authenticated=False),
    Operation("get", "/v1/teams/{team_id}/live", "Live", 200, media_type="text/event-stream"),
]


@pytest.fixture
def document() -> dict[str, Any]:
    return openapi_document("Chorus commands", OPERATIONS)


def test_every_operation_is_listed_under_its_path_and_method(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Chorus commands", "version": "1"}
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert listed == {(op.method, op.path) for op in OPERATIONS}
    assert document["paths"]["/v1/teams"]["post"]["summary"] == "Create a team"


def test_path_and_query_parameters(document: dict[str, Any]) -> None:
    params = document["paths"]["/v1/teams/{team_id}/calls"]["get"]["parameters"]
    assert [(p["name"], p["in"], p["required"]) for p in params] == [
        ("team_id", "path", True),
        ("state", "query", False),
        ("after", "query", False),
    ]
    assert document["paths"]["/v1/teams"]["post"]["parameters"] == []


def test_the_success_status_its_media_type_and_every_error_status(
    document: dict[str, Any],
) -> None:
    live = document["paths"]["/v1/teams/{team_id}/live"]["get"]["responses"]
    assert live["200"]["content"] == {"text/event-stream": {}}
    mute = document["paths"]["/v1/calls/{call_id}/mute"]["post"]["responses"]
    assert set(mute) == {"202", *ERROR_STATUSES}
    assert mute["202"]["content"] == {"application/json": {}}
    assert mute["503"] == {"description": ERROR_STATUSES["503"]}


def test_a_body_refers_to_its_schema_which_checks_it(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/calls/{call_id}/mute"]["post"]["requestBody"]
    assert body["required"] is True
    schema = {**body["content"]["application/json"]["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"muted": True})
    assert not validator.is_valid({"muted": "yes"})
    assert not validator.is_valid({"name": "a team"})  # not the other operation's body
    assert "requestBody" not in document["paths"]["/v1/sessions"]["post"]


def test_only_authenticated_operations_ask_for_the_bearer_token(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert document["paths"]["/v1/teams"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/v1/sessions"]["post"]


async def test_the_document_is_served_at_openapi_json(document: dict[str, Any]) -> None:
    app = Starlette(routes=[openapi_route("Chorus commands", OPERATIONS)])
    async with client(app) as http:
        answer = await http.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == document
