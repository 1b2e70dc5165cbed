"""Operators only: every admin route but sign-in wants a token with the operator scope."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth.tokens import OPERATOR_SCOPE
from web.auth import bearer_identity
from web.errors import Problem

Endpoint = Callable[[Request], Awaitable[Response]]


def operator(request: Request) -> str:
    """The operator id of a valid operator token: 401 without a valid token, 403 for a user's."""
    identity = bearer_identity(request)
    if identity.scope != OPERATOR_SCOPE:
        raise Problem(403, "forbidden", "this route is for operators; sign in as one")
    return identity.user_id


def operator_route(path: str, endpoint: Endpoint, methods: Sequence[str]) -> Route:
    """A route whose endpoint runs only for an operator (checked before anything else)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        request.state.operator_id = operator(request)
        return await endpoint(request)

    return Route(path, guarded, methods=list(methods))
