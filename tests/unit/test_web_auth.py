"""The caller of a request, from its bearer token, through a service run in-process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.cache import VerifiedTokens
from auth.tokens import OPERATOR_SCOPE, encode_token, new_identity
from config.settings import Settings
from tests.asgi import started
from web.auth import caller
from web.service import ServiceState, build_service

SECRET = "the-service-secret-of-at-least-32-bytes"
USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"


class CountingSecret:
    """The secret, counting how often a token had to be verified."""

    def __init__(self) -> None:
        self.asked = 0

    def __call__(self) -> str:
        self.asked += 1
        return SECRET


def _app(tokens: VerifiedTokens, tmp_path: Path) -> Starlette:
    @asynccontextmanager
    async def open_state(
        settings: Settings, registry: CollectorRegistry
    ) -> AsyncIterator[ServiceState]:
        yield ServiceState(settings=settings, tokens=tokens)

    async def me(request: Request) -> Response:
        return JSONResponse({"user_id": caller(request)})

    settings = Settings(data_dir=tmp_path, secret=SECRET)
    return build_service("test", settings, [Route("/me", me)], open_state, checks={})


async def _me(tmp_path: Path, authorization: str | None) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with started(_app(VerifiedTokens(CountingSecret()), tmp_path)) as client:
        return await client.get("/me", headers=headers)


def _assert_unauthorized(response: httpx.Response, message: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert message in response.json()["error"]["message"]


async def test_a_valid_token_names_its_user(tmp_path: Path) -> None:
    token = encode_token(SECRET, new_identity(USER, 60))
    response = await _me(tmp_path, f"Bearer {token}")
    assert response.status_code == 200
    assert response.json() == {"user_id": USER}


async def test_a_request_without_a_token_is_401(tmp_path: Path) -> None:
    _assert_unauthorized(await _me(tmp_path, None), "Bearer token is required")


async def test_a_malformed_header_or_token_is_401(tmp_path: Path) -> None:
    token = encode_token(SECRET, new_identity(USER, 60))
    _assert_unauthorized(await _me(tmp_path, f"Basic {token}"), "must be 'Bearer <token>'")
    _assert_unauthorized(await _me(tmp_path, "Bearer "), "must be 'Bearer <token>'")
    _assert_unauthorized(await _me(tmp_path, "Bearer not.a.token"), "not valid")


async def test_a_token_signed_with_another_secret_is_401(tmp_path: Path) -> None:
    forged = encode_token("someone-elses-secret-also-32-bytes-long", new_identity(USER, 60))
    _assert_unauthorized(await _me(tmp_path, f"Bearer {forged}"), "not valid")


async def test_an_expired_token_is_401(tmp_path: Path) -> None:
    expired = encode_token(SECRET, new_identity(USER, 60, now=time.time() - 120))
    _assert_unauthorized(await _me(tmp_path, f"Bearer {expired}"), "expired")


async def test_a_token_is_verified_once_until_it_expires(tmp_path: Path) -> None:
    identity = new_identity(USER, 60)
    token = encode_token(SECRET, identity)
    secret = CountingSecret()
    clock = [time.time()]
    tokens = VerifiedTokens(secret, clock=lambda: clock[0])
    async with started(_app(tokens, tmp_path)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            response = await client.get("/me", headers=headers)
            assert response.json() == {"user_id": USER}
        assert secret.asked == 1

        clock[0] = identity.expires_at  # the cache forgets the token when it expires
        assert (await client.get("/me", headers=headers)).status_code == 200
        assert secret.asked == 2

        forged = encode_token("someone-elses-secret-also-32-bytes-long", new_identity(USER, 60))
        for _ in range(2):  # a rejected token is never remembered
            response = await client.get("/me", headers={"Authorization": f"Bearer {forged}"})
            assert response.status_code == 401
        assert secret.asked == 4


async def test_an_operator_token_is_not_a_users_and_is_403(tmp_path: Path) -> None:
    token = encode_token(SECRET, new_identity(USER, 60, scope=OPERATOR_SCOPE))
    response = await _me(tmp_path, f"Bearer {token}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_a_token_is_401_once_its_user_is_revoked(tmp_path: Path) -> None:
    token = encode_token(SECRET, new_identity(USER, 60))
    tokens = VerifiedTokens(CountingSecret())
    async with started(_app(tokens, tmp_path)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/me", headers=headers)).status_code == 200
        tokens.revocations.apply(USER, time.time() + 1)
        _assert_unauthorized(await client.get("/me", headers=headers), "revoked")
