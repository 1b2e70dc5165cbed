"""Path ids: a UUID in any spelling names the resource in its canonical form, anything else 404."""

from __future__ import annotations

import uuid

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.asgi import client
from web.errors import EXCEPTION_HANDLERS
from web.paths import path_uuid

CALL = uuid.UUID("0b7f3c1e-94c4-4e1d-9f0a-3b1f2a8c5d6e")


async def call(request: Request) -> Response:
    return JSONResponse({"call_id": path_uuid(request, "call_id")})


APP = Starlette(
    routes=[Route("/v1/calls/{call_id}", call, methods=["GET"])],
    exception_handlers=EXCEPTION_HANDLERS,
)


@pytest.mark.parametrize("spelling", [str(CALL), str(CALL).upper(), CALL.hex])
async def test_a_uuid_is_given_in_its_canonical_form(spelling: str) -> None:
    async with client(APP) as http:
        answer = await http.get(f"/v1/calls/{spelling}")
    assert answer.status_code == 200
    assert answer.json() == {"call_id": str(CALL)}


@pytest.mark.parametrize("spelling", ["42", "not-a-uuid", str(CALL)[:-1], f"{CALL}0"])
async def test_anything_else_names_no_resource(spelling: str) -> None:
    async with client(APP) as http:
        answer = await http.get(f"/v1/calls/{spelling}")
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "no such call"}}
