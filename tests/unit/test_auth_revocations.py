"""Revocations as each service applies them: in memory, on every use of a token, cached or not."""

from __future__ import annotations

import msgspec
import pytest

from auth.cache import VerifiedTokens
from auth.revocations import Revocations, TokenRevoked, parse_revocation
from auth.tokens import InvalidToken, encode_token, new_identity

SECRET = "the-service-secret-of-at-least-32-bytes"
USER = "2f1b7c0e-4a4e-4b8a-9a57-0d3f3c1e2b11"
OTHER = "9d1c1f0a-5b5e-4c8b-8a57-1e3f3c1e2b22"
T = 1_900_000_000.0


def test_a_token_signed_before_its_users_not_before_is_refused_one_after_is_not() -> None:
    revocations = Revocations()
    revocations.apply(USER, T)
    with pytest.raises(TokenRevoked):
        revocations.check(new_identity(USER, 60, now=T - 0.001))
    revocations.check(new_identity(USER, 60, now=T))
    revocations.check(new_identity(OTHER, 60, now=T - 100))
    revocations.apply(USER, None)  # a tombstone: no revocation left
    revocations.check(new_identity(USER, 60, now=T - 100))


def test_a_cached_token_is_refused_once_its_user_is_revoked() -> None:
    tokens = VerifiedTokens(lambda: SECRET)
    token = encode_token(SECRET, new_identity(USER, 3600, now=T))
    assert tokens.identity(token).user_id == USER
    tokens.revocations.apply(USER, T + 1)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.identity(token)


def test_records_are_read_to_the_millisecond_and_tombstones_by_their_key() -> None:
    value = b'{"user_id": "%s", "not_before": "2030-03-17T17:46:40.250Z"}' % USER.encode()
    assert parse_revocation(USER.encode(), value) == (USER, 1_900_000_000.25)
    assert parse_revocation(USER.encode(), None) == (USER, None)
    with pytest.raises(ValueError):
        parse_revocation(None, None)
    with pytest.raises(msgspec.ValidationError):
        parse_revocation(USER.encode(), b'{"user_id": "u", "not_before": "yesterday"}')
