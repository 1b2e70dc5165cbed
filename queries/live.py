"""Live queries over server-sent events: a snapshot, then one event per change, resumable.

The client is registered with the hub before the snapshot (or the resumed changes) is read,
so a change committed meanwhile is both in its queue and, perhaps, in what was read; the
stream sends each seq once by skipping whatever is not past the position already sent. Once
the opening is written, the hub writes each change and keep-alive to the stream itself
(queries/stream.py): the connection's coroutine waits in `receive()` and wakes only at its end.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from auth.tokens import Identity
from db.readmodels import calls_of, presence_of, team_position
from db.snapshots import snapshot
from queries.callers import LiveCallers
from queries.hub import ChangeHub, Subscriber
from queries.reads import ensure_member_cached
from queries.state import queries_state
from queries.stream import SseWriter, server_send
from schemas.positions import changes_horizon
from schemas.sse import encode_event
from web.auth import bearer_identity, caller
from web.paths import path_uuid

# The headers a Starlette Response of this media type would send, built once for every stream.
_HEADERS = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]


class Live:
    """`GET /v1/teams/{team_id}/live`, a bare ASGI app: an endpoint function would add a
    Request, an exception wrapper and their closures to each of 10,000 open streams. A Problem
    raised before the response starts (401, 403, 404) is answered by the app's exception
    middleware, as for any endpoint."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        user_id = caller(request)
        identity = bearer_identity(request)  # verified once already: a cache lookup
        team_id = path_uuid(request, "team_id")
        state = queries_state(request)
        await ensure_member_cached(state, team_id, user_id)
        subscriber = await state.hub.subscribe(team_id)
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await _stream(
            request,
            state.hub,
            subscriber,
            _last_event_id(request),
            server_send(scope, send),
            receive,
            callers=(state.callers, identity),
        )


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id", "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


async def _stream(
    request: Request,
    hub: ChangeHub,
    subscriber: Subscriber,
    resume: int | None,
    send: Send,
    receive: Receive,
    callers: tuple[LiveCallers, Identity] | None = None,
) -> bool:
    """The opening, then each change and keep-alive (written by the hub), until the client
    leaves or is cut off. True when it was cut off (it resumes), False when it left."""
    writer: SseWriter | None = None
    try:
        sent, opening = await _opening(request, hub, subscriber, resume)
        writer = SseWriter(send, sent, hub.queue_limit)
        if opening:
            writer.write(b"".join(opening))
        subscriber.attach(writer)
        if callers is not None:  # a revocation of its token ends it
            callers[0].add(callers[1], subscriber.team_id, writer)
        # The only wait of the connection: the client leaving, or its response ended by the
        # writer (cut off), both told by `http.disconnect`. No task watches it besides.
        while (await receive())["type"] != "http.disconnect":
            pass
        return writer.ended is True
    finally:
        hub.unsubscribe(subscriber)
        if callers is not None and writer is not None:
            callers[0].discard(callers[1].user_id, writer)
        if writer is not None:
            await writer.close()


async def _opening(
    request: Request, hub: ChangeHub, subscriber: Subscriber, resume: int | None
) -> tuple[int, list[bytes]]:
    """Resumed changes after Last-Event-ID, or a snapshot when there is nothing to resume.

    The read model keeps a team's recent changes (rm_changes); a position older than what is
    kept, or beyond the team's position (another stack's), gets a fresh snapshot.
    """
    team_id = subscriber.team_id
    if resume is not None and resume == subscriber.after:
        return resume, []  # it has every change the hub has read; the hub sends the rest
    current = None if resume is None else await hub.position(team_id)
    if resume is not None and current is not None and changes_horizon(current) <= resume <= current:
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


routes = [Route("/v1/teams/{team_id}/live", Live(), methods=["GET"])]
