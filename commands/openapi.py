"""The commands service's OpenAPI document, built from the same body types the handlers decode."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.accounts import Credentials, NewAccount
from commands.teams import NewMember, NewTeam
from schemas import bodies

# (method, path, body type, success status, summary, authenticated)
OPERATIONS: list[tuple[str, str, type[msgspec.Struct] | None, int, str, bool]] = [
    ("post", "/v1/accounts", NewAccount, 201, "Create an account", False),
    ("post", "/v1/sessions", Credentials, 201, "Sign in: get a bearer token", False),
    ("post", "/v1/teams", NewTeam, 201, "Create a team; the caller owns it", True),
    ("post", "/v1/teams/{team_id}/members", NewMember, 201, "Add a member (owner only)", True),
    ("get", "/v1/teams/{team_id}/members", None, 200, "List the team's members", True),
    ("post", "/v1/teams/{team_id}/presence", bodies.SetPresenceBody, 202, "Set presence", True),
    (
        "post",
        "/v1/teams/{team_id}/presence/heartbeat",
        bodies.HeartbeatBody,
        202,
        "This device is still here",
        True,
    ),
    ("post", "/v1/teams/{team_id}/calls", bodies.StartCallBody, 202, "Start a call", True),
    ("post", "/v1/calls/{call_id}/join", bodies.JoinBody, 202, "Join a call", True),
    ("post", "/v1/calls/{call_id}/leave", bodies.LeaveBody, 202, "Leave a call", True),
    ("post", "/v1/calls/{call_id}/mute", bodies.MuteBody, 202, "Mute or unmute oneself", True),
    ("post", "/v1/calls/{call_id}/end", bodies.EndBody, 202, "End a call for everyone", True),
    ("get", "/v1/commands/{command_id}", None, 200, "A command's outcome", True),
]

ERROR_STATUSES = {
    "400": "Malformed JSON",
    "401": "No or bad token",
    "403": "Not a member",
    "404": "Unknown resource",
    "409": "Conflict",
    "413": "Body over 64 KiB",
    "415": "Not application/json",
    "422": "The body breaks the schema",
    "429": "Too many attempts",
    "503": "Kafka or the database is down",
}


@cache
def openapi_document() -> dict[str, Any]:
    body_types = [op[2] for op in OPERATIONS if op[2] is not None]
    refs, components = msgspec.json.schema_components(
        body_types, ref_template="#/components/schemas/{name}"
    )
    ref_of = dict(zip(body_types, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for method, path, body_type, status, summary, authenticated in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _path_params(path)
            ],
            "responses": {
                str(status): {"description": "Success"},
                **{code: {"description": text} for code, text in ERROR_STATUSES.items()},
            },
        }
        if body_type is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[body_type]}},
            }
        if authenticated:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Chorus commands", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


def openapi_route() -> Route:
    return Route("/openapi.json", openapi, methods=["GET"])
