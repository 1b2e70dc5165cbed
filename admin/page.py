"""The operators' web page, rendered on the server (`/admin`): sign-in, find a user, an account
with its teams, a team (members, presence, calls, timeline), the metrics and the media rooms.

Every view asks the JSON API in-process (admin/page_api.py) with the operator token the session
cookie holds, so the page shows what the API answers and can do nothing the API would refuse.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from admin.metrics_panels import figure_text, shown
from admin.metrics_store import MetricsStore
from admin.page_api import call_api
from admin.page_security import (
    HEADERS,
    SIGNIN_COOKIE,
    clear_session,
    csrf_token,
    new_signin_nonce,
    read_form,
    refuse_cross_site,
    session_token,
    set_session,
    set_signin_cookie,
)
from admin.sessions import OPERATOR_TOKEN_TTL_SECONDS
from admin.state import admin_state
from web.errors import Problem

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["figure"] = figure_text

ACCOUNT = "/admin/accounts/{user_id}"
PageHandler = Callable[[Request, str], Awaitable[Response]]


def render(
    request: Request, name: str, context: dict[str, Any], *, token: str | None, status: int = 200
) -> Response:
    """A template rendered with the page's headers (and the session's CSRF token)."""
    base: dict[str, Any] = {"signed_in": token is not None}
    if token is not None:
        base["csrf"] = csrf_token(request, token)
        base["operator_id"] = admin_state(request).tokens.identity(token).user_id
    return templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status, headers=HEADERS
    )


def see_other(location: str) -> Response:
    return RedirectResponse(location, status_code=303, headers=HEADERS)


def signed_in(handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
    """A view for a signed-in operator: others are sent to sign in; API errors are shown."""

    @functools.wraps(handler)
    async def view(request: Request) -> Response:
        token = session_token(request)
        if token is None:
            if request.method == "POST":
                refuse_cross_site(request)
            return see_other("/admin/sign-in")
        try:
            return await handler(request, token)
        except Problem as problem:
            context = {"status": problem.status, "code": problem.code, "error": problem.message}
            return render(request, "error.html", context, token=token, status=problem.status)

    return view


async def home(request: Request) -> Response:
    return see_other("/admin/accounts" if session_token(request) else "/admin/sign-in")


async def sign_in_form(request: Request) -> Response:
    if session_token(request) is not None:
        return see_other("/admin/accounts")
    return _sign_in_page(request, {})


def _sign_in_page(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    nonce = request.cookies.get(SIGNIN_COOKIE) or new_signin_nonce()
    response = render(
        request,
        "sign_in.html",
        {"csrf": csrf_token(request, nonce), **context},
        token=None,
        status=status,
    )
    set_signin_cookie(response, request, nonce)
    return response


async def sign_in(request: Request) -> Response:
    form = await read_form(request, request.cookies.get(SIGNIN_COOKIE))
    email = form.get("email", "")
    credentials = {
        "email": email,
        "password": form.get("password", ""),
        "code": form.get("code", ""),
    }
    if form.get("new_password"):
        credentials["new_password"] = form["new_password"]
    try:
        session = await call_api(
            request, "POST", "/v1/admin/sessions", token=None, body=credentials
        )
    except Problem as problem:
        # One message for any wrong part, as the API answers; a throttled sign-in says so.
        context = {"email": email, "error": problem.message}
        return _sign_in_page(request, context, status=problem.status)
    response = see_other("/admin/accounts")
    set_session(response, request, session["token"], OPERATOR_TOKEN_TTL_SECONDS)
    return response


@signed_in
async def sign_out(request: Request, token: str) -> Response:
    await read_form(request, token)
    response = see_other("/admin/sign-in")
    clear_session(response)
    return response


@signed_in
async def find_account(request: Request, token: str) -> Response:
    email = request.query_params.get("email", "").strip()
    if not email:
        return render(request, "find.html", {}, token=token)
    try:
        account = await call_api(
            request, "GET", "/v1/admin/accounts", token=token, query={"email": email}
        )
    except Problem as problem:
        if problem.status not in (404, 422):
            raise
        context = {"email": email, "error": problem.message}
        return render(request, "find.html", context, token=token, status=problem.status)
    return see_other(f"/admin/accounts/{account['user_id']}")


@signed_in
async def account(request: Request, token: str) -> Response:
    user_id = request.path_params["user_id"]
    found = await call_api(request, "GET", f"/v1/admin/accounts/{user_id}", token=token)
    return render(request, "account.html", {"account": found}, token=token)


def _account_edit(action: str, done: str) -> Callable[[Request], Awaitable[Response]]:
    """A form posting `action` (disable, enable) with its reason to the API."""

    @signed_in
    async def post(request: Request, token: str) -> Response:
        form = await read_form(request, token)
        user_id = request.path_params["user_id"]
        path = f"/v1/admin/accounts/{user_id}"
        body = {"reason": form.get("reason", "").strip()}
        try:
            answer = await call_api(request, "POST", f"{path}/{action}", token=token, body=body)
        except Problem as problem:
            if problem.status not in (409, 422):
                raise
            found = await call_api(request, "GET", path, token=token)
            context = {"account": found, "error": problem.message}
            return render(request, "account.html", context, token=token, status=problem.status)
        found = await call_api(request, "GET", path, token=token)
        notice = f"Account {done} (audit record {answer['audit']['seq']})."
        return render(request, "account.html", {"account": found, "notice": notice}, token=token)

    return post


@signed_in
async def audit(request: Request, token: str) -> Response:
    query = {"before": request.query_params["before"]} if "before" in request.query_params else {}
    found = await call_api(request, "GET", "/v1/admin/audit", token=token, query=query)
    return render(request, "audit.html", {"audit": found}, token=token)


@signed_in
async def team(request: Request, token: str) -> Response:
    team_id = request.path_params["team_id"]
    base = f"/v1/admin/teams/{team_id}"
    found = await call_api(request, "GET", base, token=token)
    presence = await call_api(request, "GET", f"{base}/presence", token=token)
    calls = await call_api(request, "GET", f"{base}/calls", token=token)
    context: dict[str, Any] = {
        "team": found,
        "presence": {member["user_id"]: member for member in presence["members"]},
        "calls": calls["calls"],
    }
    query = {"after": request.query_params.get("after", "0"), "limit": "50"}
    try:
        context["timeline"] = await call_api(
            request, "GET", f"{base}/events", token=token, query=query
        )
    except Problem as problem:
        context["timeline_error"] = problem.message
    return render(request, "team.html", context, token=token)


def live_routes(store: MetricsStore) -> list[Route]:
    """The metrics and media pages, which show what the service samples and reads."""

    @signed_in
    async def metrics(request: Request, token: str) -> Response:
        context = {
            "panels": shown(store, time.time()),
            "interval": store.interval,
            "samples": len(store.points("scrape_failures", 0.0)),
        }
        return render(request, "metrics.html", context, token=token)

    @signed_in
    async def media_rooms(request: Request, token: str) -> Response:
        view = await call_api(request, "GET", "/v1/admin/media/rooms", token=token)
        return render(request, "media.html", {"view": view}, token=token)

    return [
        Route("/admin/metrics", metrics, methods=["GET"]),
        Route("/admin/media", media_rooms, methods=["GET"]),
    ]


def page_routes(store: MetricsStore) -> list[Route]:
    """Every route of the page."""
    return [
        Route("/admin", home, methods=["GET"]),
        Route("/admin/sign-in", sign_in_form, methods=["GET"]),
        Route("/admin/sign-in", sign_in, methods=["POST"]),
        Route("/admin/sign-out", sign_out, methods=["POST"]),
        Route("/admin/accounts", find_account, methods=["GET"]),
        Route("/admin/accounts/{user_id}", account, methods=["GET"]),
        Route(f"{ACCOUNT}/disable", _account_edit("disable", "disabled"), methods=["POST"]),
        Route(f"{ACCOUNT}/enable", _account_edit("enable", "enabled"), methods=["POST"]),
        Route("/admin/audit", audit, methods=["GET"]),
        Route("/admin/teams/{team_id}", team, methods=["GET"]),
        *live_routes(store),
    ]
