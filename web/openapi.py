"""OpenAPI documents built from a declarative list of operations and the body types they decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ERROR_STATUSES = {
    "400": "Malformed JSON or parameter",
    "401": "No or bad token",
    "403": "Not a member",
    "404": "Unknown resource",
    "409": "Conflict",
    "413": "Body over 64 KiB",
    "415": "Not application/json",
    "422": "The body breaks the schema",
    "429": "Too many attempts",
    "503": "Kafka or the database is down, or (a command) the deciders are behind: retry",
    "504": "The read model did not catch up in time",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    status: int
    body: type[msgspec.Struct] | None = None
    authenticated: bool = True
    query: tuple[str, ...] = field(default_factory=tuple)
    media_type: str = "application/json"


def openapi_document(title: str, operations: list[Operation]) -> dict[str, Any]:
    bodies = [op.body for op in operations if op.body is not None]
    refs, components = msgspec.json.schema_components(
        bodies, ref_template="#/components/schemas/{name}"
    )
    ref_of = dict(zip(bodies, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, ref_of)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(op: Operation, ref_of: dict[Any, Any]) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in (part[1:-1] for part in op.path.split("/") if part.startswith("{"))
    ]
    params += [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in op.query
    ]
    success = {"description": "Success", "content": {op.media_type: {}}}
    operation: dict[str, Any] = {
        "summary": op.summary,
        "parameters": params,
        "responses": {
            str(op.status): success,
            **{code: {"description": text} for code, text in ERROR_STATUSES.items()},
        },
    }
    if op.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref_of[op.body]}},
        }
    if op.authenticated:
        operation["security"] = [{"bearer": []}]
    return operation


def openapi_route(title: str, operations: list[Operation]) -> Route:
    document = openapi_document(title, operations)

    async def openapi(request: Request) -> Response:
        return JSONResponse(document)

    return Route("/openapi.json", openapi, methods=["GET"])
