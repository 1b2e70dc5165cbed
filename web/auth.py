"""The caller of a request, from its bearer token; every service uses this, none asks a database."""

from __future__ import annotations

from starlette.requests import Request

from auth.tokens import InvalidToken, bearer_token
from web.errors import Problem
from web.service import ServiceState, state_of


def caller(request: Request) -> str:
    """The user id of a valid bearer token, or a 401 Problem."""
    tokens = state_of(request, ServiceState).tokens
    try:
        identity = tokens.identity(bearer_token(request.headers.get("authorization")))
    except InvalidToken as exc:
        raise Problem(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    return identity.user_id
