"""In-process caches of facts that stay true for a while: verified tokens, memberships, call teams.

Each service's state owns its caches; nothing here is a process-wide global.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from cachetools import TLRUCache, TTLCache

from auth.revocations import Revocations
from auth.tokens import Identity, verify_token

#: Bounds on what one process remembers; past them the least recently used entries go first.
MAX_TOKENS = 50_000
MAX_ENTRIES = 100_000
# A membership ends only by an operator's removal, which the revocations feed announces at once
# (`forget_ended_memberships`); the expiry only bounds how long a removal would be believed
# missed (a feed that fell behind, a row deleted by hand). Five minutes, not one: a device
# heartbeats every 10 s, and each expiry costs its next command a database round trip.
MEMBERSHIP_TTL_SECONDS = 300.0
# A call never changes team.
CALL_TEAM_TTL_SECONDS = 3600.0


def forget_ended_memberships(
    revocations: Revocations, members: TTLCache[tuple[str, str], str]
) -> None:
    """Drop a cached membership as soon as an operator's removal of it is read (in the event
    loop's thread, which owns the cache); its expiry covers a notice missed meanwhile."""
    loop = asyncio.get_running_loop()

    def ended(team_id: str, user_id: str) -> None:
        loop.call_soon_threadsafe(members.pop, (team_id, user_id), None)

    revocations.listen_memberships(ended)


def membership_cache() -> TTLCache[tuple[str, str], str]:
    """(team id, user id) -> role, for members already seen."""
    return TTLCache(maxsize=MAX_ENTRIES, ttl=MEMBERSHIP_TTL_SECONDS)


def call_team_cache() -> TTLCache[str, str]:
    """Call id -> the id of its team."""
    return TTLCache(maxsize=MAX_ENTRIES, ttl=CALL_TEAM_TTL_SECONDS)


class VerifiedTokens:
    """Bearer tokens verified once and remembered until they expire.

    Verifying a signature costs more than the rest of a small request. The cache is bounded, so
    forged tokens cannot grow it; each entry leaves it when its token expires. Revocations are
    checked on every use, cached or not (a lookup in memory: auth/revocations.py).
    """

    def __init__(
        self,
        secret: Callable[[], str],
        size: int = MAX_TOKENS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._verified: TLRUCache[str, Identity] = TLRUCache(maxsize=size, ttu=_expiry, timer=clock)
        self.revocations = Revocations()

    def identity(self, token: str) -> Identity:
        """The identity a token carries; InvalidToken if it is malformed, forged, expired or
        revoked."""
        identity = self._verified.get(token)
        if identity is None:
            identity = verify_token(self._secret(), token)
            self._verified[token] = identity
        self.revocations.check(identity)
        return identity


def _expiry(token: str, identity: Identity, now: float) -> float:
    return float(identity.expires_at)
