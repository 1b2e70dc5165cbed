"""The caller of a request, from its bearer token; every service uses this, none asks a database
(revoked tokens are known from memory: auth/revocations.py)."""

from __future__ import annotations

import uuid

from starlette.requests import Request

from auth.tokens import Identity, InvalidToken, bearer_token
from web.errors import Problem
from web.service import ServiceState, state_of


def bearer_identity(request: Request) -> Identity:
    """The identity of the request's valid, unrevoked bearer token, or a 401 Problem."""
    tokens = state_of(request, ServiceState).tokens
    try:
        return tokens.identity(bearer_token(request.headers.get("authorization")))
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc


def caller(request: Request) -> str:
    """The user id of a valid bearer token, or a 401 Problem."""
    identity = bearer_identity(request)
    try:
        # Every account's id is a UUID: a signed token naming anything else names nobody.
        user_id = str(uuid.UUID(identity.user_id))
    except ValueError as exc:
        raise unauthorized("the token names no user") from exc
    if identity.scope is not None:
        # An operator's token (admin/) names an operator, not a user of the API.
        raise Problem(403, "forbidden", "this token is not a user's")
    return user_id


def unauthorized(message: str) -> Problem:
    """The contract's 401, asking for a bearer token."""
    return Problem(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
