"""A small in-process cache for facts that only ever become true (memberships, call teams)."""

from __future__ import annotations

import time
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class GrowOnlyCache(Generic[K, V]):
    """Remembers values for `ttl` seconds, at most `size` of them (then starts afresh).

    Only facts that cannot become false belong here: a membership (the contract has no way to
    leave a team) or the team of a call. A miss simply asks the database.
    """

    def __init__(self, ttl: float, size: int = 100_000) -> None:
        self._ttl = ttl
        self._size = size
        self._entries: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return value

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._ttl, value)
