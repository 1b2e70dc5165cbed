"""`POST /v1/rooms/{call_id}/offer`: a participant's SDP offer in, the room's SDP answer out."""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from media.node import MediaNode
from media.signalling import MalformedOffer, answer_offer
from media.state import media_state
from web.auth import caller
from web.bodies import decode_body
from web.errors import Problem
from web.paths import path_uuid

CATCH_UP_SECONDS = 2.0  # an offer may overtake the join (or allocation) in this node's view


class OfferBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of an offer: a WebRTC session description."""

    sdp: Annotated[str, msgspec.Meta(min_length=1)]
    type: Literal["offer"]


def node_of(request: Request) -> MediaNode:
    return media_state(request).node


async def offer(request: Request) -> Response:
    received = time.perf_counter()
    user_id = caller(request)
    call_id = path_uuid(request, "call_id")
    body = await decode_body(request, OfferBody)
    node = node_of(request)
    await _admitted(node, call_id, user_id)
    room = node.room_for(call_id)
    if room is None:  # released or moved while we waited
        raise Problem(404, "unknown_room", "no room for this call on this media node")
    try:
        answer = await answer_offer(room, user_id, body.sdp)
    except MalformedOffer as exc:
        raise Problem(400, "malformed_sdp", str(exc)) from exc
    node.joined(call_id, user_id, received)
    return JSONResponse({"sdp": answer, "type": "answer"})


async def _admitted(node: MediaNode, call_id: str, user_id: str) -> None:
    """Return when the log says this node hosts the call and the user is in it, else 404/403."""

    def admitted() -> bool:
        return node.room_for(call_id) is not None and node.view.is_participant(call_id, user_id)

    def settled_elsewhere() -> bool:
        # Caught up, and the call is known with a room on another node: no need to wait.
        call = node.view.calls.get(call_id)
        return node.caught_up and call is not None and call.node not in (None, node.node_id)

    if not admitted() and not settled_elsewhere():
        with contextlib.suppress(TimeoutError):
            await node.wait_for(lambda: admitted() or settled_elsewhere(), CATCH_UP_SECONDS)
    if node.room_for(call_id) is None:
        raise Problem(404, "unknown_room", "no room for this call on this media node")
    if not node.view.is_participant(call_id, user_id):
        raise Problem(403, "not_a_participant", "only a participant of the call may connect")


routes = [Route("/v1/rooms/{call_id}/offer", offer, methods=["POST"])]
