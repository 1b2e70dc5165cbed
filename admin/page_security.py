"""The page's session and its defences: an HttpOnly, SameSite=Strict cookie holding the operator
token, a CSRF token in every form, and cross-site posts refused before any form is read.

The CSRF token of a session is an HMAC of its operator token under the service secret (nothing
to store); before sign-in, the sign-in form is tied to a random cookie of its own (double
submit), so that another site cannot sign a browser in as its own operator either.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from admin.state import admin_state
from auth.tokens import OPERATOR_SCOPE, InvalidToken
from web.errors import Problem

SESSION_COOKIE = "chorus_admin_session"
SIGNIN_COOKIE = "chorus_admin_signin"
COOKIE_PATH = "/admin"
MAX_FORM_BYTES = 16 * 1024

#: Every page: no scripts, no framing, no referrer to other sites, nothing cached.
HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    # Not no-referrer: with it browsers send `Origin: null` on the page's own posts.
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def session_token(request: Request) -> str | None:
    """The signed-in operator's token; None if absent, expired or not an operator's."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        identity = admin_state(request).tokens.identity(token)
    except InvalidToken:  # expired, forged or revoked: sign in again
        return None
    return token if identity.scope == OPERATOR_SCOPE else None


def csrf_token(request: Request, session: str) -> str:
    """The CSRF token bound to a session (or to the sign-in cookie's value)."""
    secret = admin_state(request).settings.require_secret().encode()
    return hmac.new(secret, b"admin-page-csrf:" + session.encode(), hashlib.sha256).hexdigest()


def set_session(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(SIGNIN_COOKIE, path=COOKIE_PATH)


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def new_signin_nonce() -> str:
    """A fresh value for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)


def set_signin_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        SIGNIN_COOKIE,
        nonce,
        max_age=1800,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def read_form(request: Request, bound_to: str | None) -> dict[str, str]:
    """A posted form, after refusing a cross-site post and a missing or wrong CSRF token.

    `bound_to` is what the form's token was made from: the session token, or the sign-in
    cookie's value (None: there is none, so the post is refused).
    """
    refuse_cross_site(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise Problem(415, "unsupported_media_type", "post the page's form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Problem(413, "body_too_large", "the form is too large")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise Problem(400, "malformed_form", "the form is not UTF-8") from exc
    form = {key: values[0] for key, values in fields.items()}
    given = form.get("csrf", "")
    if bound_to is None or not hmac.compare_digest(given, csrf_token(request, bound_to)):
        raise Problem(403, "csrf_refused", "the form's token is missing or stale; reload the page")
    return form


def refuse_cross_site(request: Request) -> None:
    """403 for a post another site's page made (the browser says so in its headers)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Problem(403, "cross_site_refused", "forms are taken from this site's pages only")
    origin = request.headers.get("origin")
    if origin is not None and origin != _own_origin(request):
        raise Problem(403, "cross_site_refused", "forms are taken from this site's pages only")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
