"""The caller of a request, from its bearer token; every service uses this, none asks a database."""

from __future__ import annotations

from starlette.requests import Request

from infra.http import Problem
from infra.service import Resources
from infra.tokens import InvalidToken, bearer_token, verify_token


def resources_of(request: Request) -> Resources:
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    return resources


def caller(request: Request) -> str:
    """The user id of a valid bearer token, or a 401 Problem."""
    secret = resources_of(request).settings.require_secret()
    try:
        identity = verify_token(secret, bearer_token(request.headers.get("authorization")))
    except InvalidToken as exc:
        raise Problem(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    return identity.user_id
