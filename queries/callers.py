"""The live streams of each user, so that a revocation (auth/revocations.py) or the end of a
membership ends them at once: the client reconnects, as after any cut-off, and is refused then."""

from __future__ import annotations

import asyncio

from auth.revocations import Revocations
from auth.tokens import Identity, InvalidToken
from queries.stream import SseWriter


class LiveCallers:
    """User id -> the writers of that user's open live streams, with their tokens' issue time
    and their team."""

    def __init__(self, revocations: Revocations) -> None:
        self._revocations = revocations
        self._streams: dict[str, dict[SseWriter, tuple[float, str]]] = {}

    def watch_revocations(self, loop: asyncio.AbstractEventLoop) -> None:
        """End the streams of each revocation read from now on (it arrives in another thread)."""

        def revoked(user_id: str, not_before: float) -> None:
            loop.call_soon_threadsafe(self.revoke, user_id, not_before)

        def removed(team_id: str, user_id: str) -> None:
            loop.call_soon_threadsafe(self.membership_ended, team_id, user_id)

        self._revocations.listen(revoked)
        self._revocations.listen_memberships(removed)

    def add(self, identity: Identity, team_id: str, writer: SseWriter) -> None:
        """A stream of `team_id` opened with `identity`'s token; ended at once if the token was
        revoked meanwhile."""
        self._streams.setdefault(identity.user_id, {})[writer] = (identity.issued_at, team_id)
        try:
            self._revocations.check(identity)
        except InvalidToken:
            writer.end()

    def discard(self, user_id: str, writer: SseWriter) -> None:
        streams = self._streams.get(user_id)
        if streams is not None:
            streams.pop(writer, None)
            if not streams:
                del self._streams[user_id]

    def revoke(self, user_id: str, not_before: float) -> None:
        """Cut off the user's streams opened with a token signed before `not_before`."""
        for writer, (issued_at, _) in list(self._streams.get(user_id, {}).items()):
            if issued_at < not_before:
                writer.end()

    def membership_ended(self, team_id: str, user_id: str) -> None:
        """Cut off the user's streams of a team they are no longer a member of."""
        for writer, (_, team) in list(self._streams.get(user_id, {}).items()):
            if team == team_id:
                writer.end()

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._streams.values())
