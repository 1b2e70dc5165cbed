"""Signed, expiring bearer tokens: issued by the commands service, verified by every service."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
ISSUER = "chorus"


class InvalidToken(Exception):
    """The token is missing, malformed, forged or expired."""


@dataclass(frozen=True)
class Identity:
    user_id: str  # the subject: a user's id, or an operator's for an operator token
    expires_at: int
    # None for a user token (which carries no scope claim at all); "operator" for an operator.
    scope: str | None = None
    # When it was signed (epoch seconds, to the millisecond): a revocation (auth/revocations.py)
    # refuses the tokens of a user signed before its not-before time. 0 for a token without
    # `iat` (signed before tokens carried one): any revocation of its user refuses it.
    issued_at: float = 0.0


#: The scope of an operator's token (admin/); no user token carries a scope.
OPERATOR_SCOPE = "operator"


def new_identity(
    user_id: str, ttl_seconds: int, now: float | None = None, scope: str | None = None
) -> Identity:
    """An identity that expires `ttl_seconds` from now; `encode_token` signs it."""
    issued = time.time() if now is None else now
    return Identity(
        user_id=user_id,
        expires_at=int(issued) + ttl_seconds,
        scope=scope,
        issued_at=math.floor(issued * 1000) / 1000,  # to the ms, as revocations are
    )


def encode_token(secret: str, identity: Identity) -> str:
    claims: dict[str, str | int | float] = {
        "sub": identity.user_id,
        "exp": identity.expires_at,
        "iss": ISSUER,
    }
    if identity.issued_at:
        claims["iat"] = identity.issued_at
    if identity.scope is not None:
        claims["scope"] = identity.scope
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Identity:
    """Check signature, issuer and expiry without any database call."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            # A host whose clock runs behind the signer's must still take a fresh token.
            options={"require": ["sub", "exp", "iss"], "verify_iat": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("the token has expired; sign in again") from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken("the token is not valid") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("the token names no user")
    scope = claims.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise InvalidToken("the token's scope is not valid")
    issued_at = claims.get("iat", 0.0)
    if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
        raise InvalidToken("the token's issue time is not valid")
    return Identity(
        user_id=subject, expires_at=int(claims["exp"]), scope=scope, issued_at=float(issued_at)
    )


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        raise InvalidToken("an Authorization: Bearer token is required")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    return token.strip()
