"""The caller of a request, from its bearer token; every service uses this, none asks a database."""

from __future__ import annotations

import time

from starlette.requests import Request

from auth.tokens import Identity, InvalidToken, bearer_token, verify_token
from web.errors import Problem
from web.service import Resources


def resources_of(request: Request) -> Resources:
    resources = request.app.state.resources
    assert isinstance(resources, Resources)
    return resources


# Verifying a signature costs more than the rest of a small request; a token verified once is
# remembered until its expiry (bounded, so forged tokens cannot grow it without limit).
_VERIFIED: dict[str, Identity] = {}
_VERIFIED_MAX = 50_000


def caller(request: Request) -> str:
    """The user id of a valid bearer token, or a 401 Problem."""
    try:
        token = bearer_token(request.headers.get("authorization"))
        identity = _VERIFIED.get(token)
        if identity is None or identity.expires_at <= time.time():
            secret = resources_of(request).settings.require_secret()
            identity = verify_token(secret, token)
            if len(_VERIFIED) >= _VERIFIED_MAX:
                _VERIFIED.clear()
            _VERIFIED[token] = identity
    except InvalidToken as exc:
        raise Problem(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    return identity.user_id
