"""Live queries over server-sent events: a snapshot, then one event per change, resumable.

The client is registered with the hub before the snapshot (or the resumed changes) is read,
so a change committed meanwhile is both in the queue and, perhaps, in what was read; the
stream sends each seq once by skipping whatever is not past the position already sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from db.readmodels import calls_of, presence_of, team_position
from db.snapshots import snapshot
from queries.hub import ChangeHub, Subscriber
from queries.reads import ensure_member_cached
from queries.state import queries_state
from schemas.positions import changes_horizon
from schemas.sse import KEEPALIVE, encode_event
from web.auth import caller
from web.paths import path_uuid


async def live(request: Request) -> Response:
    user_id = caller(request)
    team_id = path_uuid(request, "team_id")
    state = queries_state(request)
    await ensure_member_cached(state, team_id, user_id)
    hub = state.hub
    subscriber = await hub.subscribe(team_id)
    resume = _last_event_id(request)
    return StreamingResponse(
        _stream(request, hub, subscriber, resume, state.settings.sse_keepalive_seconds),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


async def _stream(
    request: Request,
    hub: ChangeHub,
    subscriber: Subscriber,
    resume: int | None,
    keepalive: float,
) -> AsyncIterator[bytes]:
    """The opening, then each change; a comment when quiet for `keepalive` seconds (proxies)."""
    try:
        sent, opening = await _opening(request, hub, subscriber, resume)
        for chunk in opening:
            yield chunk
        while True:
            try:
                change = await asyncio.wait_for(subscriber.queue.get(), keepalive)
            except TimeoutError:
                yield KEEPALIVE
                continue
            if change is None:  # this client fell too far behind: it resumes from `sent`
                return
            if change.seq > sent:
                yield change.frame
                sent = change.seq
    finally:
        hub.unsubscribe(subscriber)


async def _opening(
    request: Request, hub: ChangeHub, subscriber: Subscriber, resume: int | None
) -> tuple[int, list[bytes]]:
    """Resumed changes after Last-Event-ID, or a snapshot when there is nothing to resume.

    The read model keeps a team's recent changes (rm_changes); a position older than what is
    kept, or beyond the team's position (another stack's), gets a fresh snapshot.
    """
    team_id = subscriber.team_id
    current = await hub.position(team_id)
    if resume is not None and changes_horizon(current) <= resume <= current:
        changes = await hub.changes_after(team_id, resume)
        chunks = [c.frame for c in changes]
        return (changes[-1].seq if changes else resume), chunks
    return await hub.shared_snapshot(subscriber, lambda: _snapshot(request, team_id))


async def _snapshot(request: Request, team_id: str) -> tuple[int, list[bytes]]:
    engine = queries_state(request).engine
    async with snapshot(engine) as conn:
        position = await team_position(conn, team_id)
        presence = await presence_of(conn, team_id)
        calls = await calls_of(conn, team_id, None)
    data = {"presence": {"position": str(position), **presence}, "calls": calls}
    return position, [encode_event("snapshot", position, data)]


routes = [Route("/v1/teams/{team_id}/live", live, methods=["GET"])]
