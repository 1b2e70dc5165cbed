"""Operators' sign-in and the guard on every admin route, on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pyotp
import pytest
import sqlalchemy as sa
from starlette.routing import Route

from admin.app import create_app
from admin.openapi import OPERATIONS
from admin.operators import NewOperator
from auth.throttle import BLOCK_AFTER_FAILURES
from auth.tokens import OPERATOR_SCOPE, encode_token, new_identity
from config.settings import Settings
from db.engines import make_engine
from db.tables import operator_signin_failures
from schemas.topics import Topics
from tests.asgi import started
from tests.integration.operators import OWN_PASSWORD, in_process_admin

SECRET = "the-admin-test-secret-of-32-bytes-or-more"
OTHER_SECRET = "someone-elses-secret-also-32-bytes-long"


@pytest.fixture
async def admin(
    migrated_database_url: str, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = in_process_admin(migrated_database_url, kafka_bootstrap, topics, tmp_path, SECRET)
    async with started(create_app(settings)) as client:
        yield client


def _code(made: NewOperator) -> str:
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp.now()


def _credentials(made: NewOperator, **changes: str) -> dict[str, str]:
    """A first sign-in: the printed password, a new one, and a current code."""
    printed = {"email": made.email, "password": made.password, "code": _code(made)}
    return {**printed, "new_password": OWN_PASSWORD, **changes}


async def test_the_printed_password_works_once_and_the_first_sign_in_replaces_it(
    admin: httpx.AsyncClient, operator: NewOperator
) -> None:
    totp = pyotp.parse_uri(operator.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    printed = {"email": operator.email, "password": operator.password, "code": totp.now()}

    unchanged = await admin.post("/v1/admin/sessions", json=printed)
    assert unchanged.status_code == 403
    assert unchanged.json()["error"]["code"] == "password_change_required"
    # The refusal took no code: the same one signs in with a new password.
    changed = await admin.post("/v1/admin/sessions", json={**printed, "new_password": OWN_PASSWORD})
    assert changed.status_code == 201, changed.text

    later = totp.at(time.time() + totp.interval)  # a code of the next step: each signs in once
    again = await admin.post("/v1/admin/sessions", json={**printed, "code": later})
    assert again.status_code == 401  # the printed password is gone
    own = {**printed, "password": OWN_PASSWORD, "code": later}
    assert (await admin.post("/v1/admin/sessions", json=own)).status_code == 201


async def test_an_operator_signs_in_with_password_and_totp(
    admin: httpx.AsyncClient, operator: NewOperator
) -> None:
    answer = await admin.post("/v1/admin/sessions", json=_credentials(operator))

    assert answer.status_code == 201, answer.text
    assert answer.json()["operator_id"] == operator.operator_id
    claims = jwt.decode(answer.json()["token"], SECRET, algorithms=["HS256"])
    assert claims["scope"] == OPERATOR_SCOPE and claims["sub"] == operator.operator_id
    assert operator.provisioning_uri.startswith("otpauth://totp/Chorus%20admin:")


async def test_a_totp_code_signs_in_once(admin: httpx.AsyncClient, operator: NewOperator) -> None:
    credentials = _credentials(operator)
    first = await admin.post("/v1/admin/sessions", json=credentials)
    again = await admin.post("/v1/admin/sessions", json=credentials)

    assert first.status_code == 201, first.text
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "bad_credentials"


@pytest.mark.parametrize("wrong", ["password", "code", "email"])
async def test_each_wrong_part_is_the_same_401(
    admin: httpx.AsyncClient, operator: NewOperator, wrong: str
) -> None:
    bad = {
        "password": "not the password",
        "code": f"{(int(_code(operator)) + 500_000) % 1_000_000:06d}",
        "email": "nobody@example.com",
    }[wrong]
    answer = await admin.post("/v1/admin/sessions", json=_credentials(operator, **{wrong: bad}))

    assert answer.status_code == 401
    assert answer.json()["error"] == {
        "code": "bad_credentials",
        "message": "the e-mail, the password or the code is wrong",
    }


async def test_a_session_without_a_code_is_422(
    admin: httpx.AsyncClient, operator: NewOperator
) -> None:
    answer = await admin.post(
        "/v1/admin/sessions",
        json={"email": operator.email, "password": operator.password, "new_password": OWN_PASSWORD},
    )
    assert answer.status_code == 422
    assert "code" in answer.json()["error"]["message"]


async def test_sign_in_is_throttled_like_users_then_even_the_right_answer_waits(
    admin: httpx.AsyncClient, operator: NewOperator, migrated_database_url: str
) -> None:
    wrong = _credentials(operator, password="not the password")
    answers = await asyncio.gather(
        *(admin.post("/v1/admin/sessions", json=wrong) for _ in range(BLOCK_AFTER_FAILURES + 2))
    )
    right = await admin.post("/v1/admin/sessions", json=_credentials(operator))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [401] * BLOCK_AFTER_FAILURES + [429] * 2
    assert right.status_code == 429
    engine = make_engine(migrated_database_url)
    try:
        with engine.connect() as conn:
            counted = conn.execute(sa.select(operator_signin_failures.c.email)).scalars().all()
    finally:
        engine.dispose()
    assert counted == [operator.email]  # operators' attempts, in their own table


def _admin_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(secret=SECRET))
    found = []
    for route in app.routes:
        if not isinstance(route, Route) or not route.path.startswith("/v1/admin/"):
            continue
        if route.path == "/v1/admin/sessions":
            continue
        path = route.path
        for name in route.param_convertors:
            path = path.replace(f"{{{name}}}", str(uuid.uuid4()))
        found += [(method, path) for method in sorted(route.methods or ()) if method != "HEAD"]
    return found


ADMIN_ROUTES = _admin_routes()


def test_the_guarded_route_list_is_what_the_service_serves_and_documents() -> None:
    paths = {path.split("/")[3] for _, path in ADMIN_ROUTES}
    assert paths == {"accounts", "teams", "commands", "audit", "media", "metrics"}
    assert len(ADMIN_ROUTES) == 17
    served = {
        (method.lower(), route.path)
        for route in create_app(Settings(secret=SECRET)).routes
        if isinstance(route, Route) and route.path.startswith("/v1/admin/")
        for method in route.methods or ()
        if method != "HEAD"
    }
    documented = {(op.method, op.path): op.authenticated for op in OPERATIONS}
    assert set(documented) == served
    assert [key for key, authenticated in documented.items() if not authenticated] == [
        ("post", "/v1/admin/sessions")
    ]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_every_admin_route_is_for_operators_only(
    admin: httpx.AsyncClient, method: str, path: str
) -> None:
    someone = str(uuid.uuid4())
    user = encode_token(SECRET, new_identity(someone, 60))
    tampered = encode_token(OTHER_SECRET, new_identity(someone, 60, scope=OPERATOR_SCOPE))
    expired = encode_token(SECRET, new_identity(someone, -60, scope=OPERATOR_SCOPE))
    operator = encode_token(SECRET, new_identity(someone, 60, scope=OPERATOR_SCOPE))
    params = {"email": "nobody@example.com"}
    # A well-formed edit: what is refused is the token, never the body.
    body = None if method == "GET" else {"reason": "support", "user_id": str(uuid.uuid4())}
    if path.endswith(("/disable", "/enable", "/erase", "/password-reset", "/remove")):
        body = {"reason": "support"}
    elif method == "PATCH":
        body = {"reason": "support", "display_name": "Someone"}

    async def call(token: str | None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await admin.request(method, path, headers=headers, params=params, json=body)

    for token in (None, tampered, expired, "not.a.token"):
        refused = await call(token)
        assert refused.status_code == 401, (token, refused.text)
        assert refused.headers["www-authenticate"] == "Bearer"
    forbidden = await call(user)
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "forbidden"
    # An operator gets past the guard: to a 404, as nothing here exists (the audit log, the
    # media view and the metrics list what they have, which is nothing yet).
    passed = await call(operator)
    if path == "/v1/admin/audit":
        assert passed.status_code == 200 and passed.json()["records"] == []
    elif path in ("/v1/admin/media/rooms", "/v1/admin/metrics"):
        assert passed.status_code == 200, passed.text
    else:
        assert passed.status_code == 404, passed.text
