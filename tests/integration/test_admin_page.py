"""The admin page over HTTP, on the real PostgreSQL: sign-in with TOTP into an HttpOnly,
SameSite=Strict cookie, forms refused without their CSRF token or from another site, and the
account, team and metrics views rendered from what the API answers."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa

from admin.app import create_app
from admin.operators import NewOperator
from db.engines import make_engine
from db.tables import memberships, teams, users
from schemas.topics import Topics
from tests.asgi import started
from tests.integration.operators import OWN_PASSWORD, in_process_admin

SECRET = "the-admin-page-test-secret-of-32-bytes-or-more"


@pytest.fixture
async def page(
    migrated_database_url: str, kafka_bootstrap: str, topics: Topics, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    # No service to sample at port 1: the metrics page shows its panels without samples.
    ports = ("commands_port", "queries_port", "media_port", "worker_port", "web_port")
    settings = in_process_admin(
        migrated_database_url,
        kafka_bootstrap,
        topics,
        tmp_path,
        SECRET,
        **dict.fromkeys(ports, 1),
    )
    async with started(create_app(settings, sample_seconds=0.2)) as client:
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


def _code(made: NewOperator) -> str:
    totp = pyotp.parse_uri(made.provisioning_uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp.now()


async def _sign_in(page: httpx.AsyncClient, made: NewOperator) -> httpx.Response:
    form = await page.get("/admin/sign-in")
    assert form.status_code == 200
    return await page.post(
        "/admin/sign-in",
        data={
            "csrf": _csrf(form.text),
            "email": made.email,
            "password": made.password,
            "new_password": OWN_PASSWORD,
            "code": _code(made),
        },
    )


async def test_sign_in_sets_a_strict_http_only_cookie_and_signs_out(
    page: httpx.AsyncClient, operator: NewOperator
) -> None:
    assert (await page.get("/admin/accounts")).headers["location"] == "/admin/sign-in"

    signed = await _sign_in(page, operator)

    assert signed.status_code == 303 and signed.headers["location"] == "/admin/accounts"
    cookie = next(
        value
        for name, value in signed.headers.multi_items()
        if name == "set-cookie" and value.startswith("chorus_admin_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/admin"} <= attributes
    find = await page.get("/admin/accounts")
    assert find.status_code == 200 and "Find a user" in find.text
    assert "script" not in find.headers["content-security-policy"].replace("'none'", "")
    assert find.headers["x-frame-options"] == "DENY"

    out = await page.post("/admin/sign-out", data={"csrf": _csrf(find.text)})
    assert out.status_code == 303
    assert (await page.get("/admin/accounts")).headers["location"] == "/admin/sign-in"


async def test_the_first_sign_in_without_a_new_password_says_so(
    page: httpx.AsyncClient, operator: NewOperator
) -> None:
    form = await page.get("/admin/sign-in")
    assert 'id="new_password"' in form.text
    data = {"email": operator.email, "password": operator.password, "code": _code(operator)}
    answer = await page.post("/admin/sign-in", data={"csrf": _csrf(form.text), **data})
    assert answer.status_code == 403
    assert "the printed password works once" in answer.text
    assert "chorus_admin_session" not in page.cookies


async def test_a_wrong_code_signs_no_one_in(page: httpx.AsyncClient, operator: NewOperator) -> None:
    form = await page.get("/admin/sign-in")
    wrong = f"{(int(_code(operator)) + 500_000) % 1_000_000:06d}"
    answer = await page.post(
        "/admin/sign-in",
        data={
            "csrf": _csrf(form.text),
            "email": operator.email,
            "password": operator.password,
            "new_password": OWN_PASSWORD,
            "code": wrong,
        },
    )
    assert answer.status_code == 401
    assert "the e-mail, the password or the code is wrong" in answer.text
    assert "chorus_admin_session" not in page.cookies


@pytest.mark.parametrize("attack", ["no token", "wrong token", "other origin", "cross-site"])
async def test_forms_refuse_cross_site_posts(
    page: httpx.AsyncClient, operator: NewOperator, attack: str
) -> None:
    form = await page.get("/admin/sign-in")
    data = {
        "csrf": _csrf(form.text),
        "email": operator.email,
        "password": operator.password,
        "new_password": OWN_PASSWORD,
        "code": _code(operator),
    }
    headers: dict[str, str] = {}
    if attack == "no token":
        del data["csrf"]
    elif attack == "wrong token":
        data["csrf"] = "0" * 64
    elif attack == "other origin":
        headers["Origin"] = "https://evil.example"
    else:
        headers["Sec-Fetch-Site"] = "cross-site"

    refused = await page.post("/admin/sign-in", data=data, headers=headers)

    assert refused.status_code == 403, refused.text
    assert "chorus_admin_session" not in page.cookies
    # The code was not spent by the refused post: the real form still signs in with it.
    assert (
        await page.post("/admin/sign-in", data={**data, "csrf": _csrf(form.text)})
    ).status_code == 303


async def test_a_signed_in_form_needs_the_sessions_token(
    page: httpx.AsyncClient, operator: NewOperator
) -> None:
    await _sign_in(page, operator)
    # The sign-in form's token is not the session's: signing out with it is refused.
    refused = await page.post("/admin/sign-out", data={"csrf": "0" * 64})
    assert refused.status_code == 403
    assert (await page.get("/admin/accounts")).status_code == 200


async def test_the_page_shows_an_account_its_team_and_the_metrics(
    page: httpx.AsyncClient, operator: NewOperator, migrated_database_url: str
) -> None:
    user_id, team_id = str(uuid.uuid4()), str(uuid.uuid4())
    email = f"carol-{uuid.uuid4().hex[:6]}@example.com"
    engine = make_engine(migrated_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(users).values(
                    user_id=user_id, email=email, display_name="Carol <b>", password_hash="x"
                )
            )
            conn.execute(sa.insert(teams).values(team_id=team_id, name="Support", owner_id=user_id))
            conn.execute(
                sa.insert(memberships).values(team_id=team_id, user_id=user_id, role="owner")
            )
    finally:
        engine.dispose()
    await _sign_in(page, operator)

    found = await page.get("/admin/accounts", params={"email": email.upper()})
    assert found.status_code == 303 and found.headers["location"] == f"/admin/accounts/{user_id}"
    account = await page.get(found.headers["location"])
    assert account.status_code == 200
    assert "Carol &lt;b&gt;" in account.text and "Carol <b>" not in account.text  # escaped
    assert f'href="/admin/teams/{team_id}"' in account.text
    missing = await page.get("/admin/accounts", params={"email": "nobody@example.com"})
    assert missing.status_code == 404 and "no account with this e-mail" in missing.text
    assert (await page.get(f"/admin/accounts/{uuid.uuid4()}")).status_code == 404

    team = await page.get(f"/admin/teams/{team_id}")
    assert team.status_code == 200
    assert "Support" in team.text and email in team.text
    assert "Timeline (from the log)" in team.text and "chains checked from the genesis" in team.text

    disabled = await page.post(
        f"/admin/accounts/{user_id}/disable",
        data={"csrf": _csrf(account.text), "reason": "chargeback <fraud>"},
    )
    assert disabled.status_code == 200 and "Account disabled (audit record 1)" in disabled.text
    again = await page.post(
        f"/admin/accounts/{user_id}/disable",
        data={"csrf": _csrf(account.text), "reason": "twice"},
    )
    assert again.status_code == 409 and "disabled already" in again.text
    no_reason = await page.post(
        f"/admin/accounts/{user_id}/enable", data={"csrf": _csrf(account.text), "reason": ""}
    )
    assert no_reason.status_code == 422
    forged = await page.post(f"/admin/accounts/{user_id}/enable", data={"reason": "x"})
    assert forged.status_code == 403
    audit = await page.get("/admin/audit")
    assert audit.status_code == 200
    assert audit.text.count("account.disable") == 1 and "account.enable" not in audit.text
    assert "chargeback &lt;fraud&gt;" in audit.text and f"/admin/accounts/{user_id}" in audit.text

    metrics = await page.get("/admin/metrics")
    assert metrics.status_code == 200
    for key in ("calls_started", "calls_active", "join_time", "command_rate", "decided_latency",
                "decider_lag", "sse_clients", "node_rooms", "failures"):  # fmt: skip
        assert f'id="panel-{key}"' in metrics.text
    assert metrics.text.count("<svg") == 18  # an hour and a day per panel
