"""The bounded caches a service keeps: tokens by expiry and recency, facts by age."""

from __future__ import annotations

from auth.cache import MEMBERSHIP_TTL_SECONDS, VerifiedTokens, membership_cache
from auth.tokens import encode_token, new_identity

SECRET = "the-service-secret-of-at-least-32-bytes"


def test_the_least_recently_used_token_leaves_a_full_cache() -> None:
    asked: list[str] = []

    def secret() -> str:
        asked.append(SECRET)
        return SECRET

    tokens = VerifiedTokens(secret, size=2)
    first, second, third = (encode_token(SECRET, new_identity(f"user-{n}", 60)) for n in range(3))
    for token in (first, second, first, third):  # `second` is now the least recently used
        tokens.identity(token)
    assert len(asked) == 3
    assert tokens.identity(first).user_id == "user-0"
    assert tokens.identity(third).user_id == "user-2"
    assert len(asked) == 3
    assert tokens.identity(second).user_id == "user-1"
    assert len(asked) == 4


def test_a_full_membership_cache_keeps_its_recent_entries() -> None:
    # The cache it replaces emptied itself when full, asking the database again for everyone.
    members = membership_cache()
    for n in range(members.maxsize + 10):
        members[f"team-{n}", "user"] = "member"
    assert len(members) == members.maxsize
    assert ("team-0", "user") not in members
    assert (f"team-{members.maxsize + 9}", "user") in members
    assert members.ttl == MEMBERSHIP_TTL_SECONDS
