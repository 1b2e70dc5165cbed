"""A throwaway HTTP front over the in-process media core (Room, MixerLoop, answer_offer).

Used by bench/media.py ONLY while the real media service cannot answer offers: it runs in a
process of its own (so that its CPU is measured apart from the clients'), with the service's
signalling shape: `POST /v1/rooms/<id>/offer` with `{"sdp", "type": "offer"}` and a bearer token,
answered `{"sdp", "type": "answer"}`. The token is taken as the user id: there is no auth here.

    python -m bench.media_front --port 8100
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from media.mixer_loop import MixerLoop
from media.room import Room
from media.signalling import MalformedOffer, answer_offer

mixer = MixerLoop()


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def create_room(request: Request) -> JSONResponse:
    room_id = uuid.uuid4().hex
    mixer.add(Room(room_id))
    return JSONResponse(
        {"room_id": room_id, "offer_url": f"{request.base_url}v1/rooms/{room_id}/offer"}
    )


async def release_room(request: Request) -> JSONResponse:
    released = await mixer.release(request.path_params["room_id"])
    return JSONResponse({"released": released}, status_code=200 if released else 404)


async def offer(request: Request) -> JSONResponse:
    room = mixer.rooms.get(request.path_params["room_id"])
    if room is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    user_id = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    body = await request.json()
    try:
        sdp = await answer_offer(room, user_id, str(body["sdp"]))
    except MalformedOffer as error:
        return JSONResponse({"error": "bad_request", "message": str(error)}, status_code=400)
    return JSONResponse({"sdp": sdp, "type": "answer"})


async def counters(_: Request) -> JSONResponse:
    c = mixer.counters
    return JSONResponse(
        {"ticks": c.ticks, "ticks_late": c.ticks_late, "encodes": c.encodes, "busy": c.busy_seconds}
    )


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    mixer.start()
    yield
    await mixer.stop()


app = Starlette(
    routes=[
        Route("/healthz", healthz),
        Route("/counters", counters),
        Route("/v1/rooms", create_room, methods=["POST"]),
        Route("/v1/rooms/{room_id}", release_room, methods=["DELETE"]),
        Route("/v1/rooms/{room_id}/offer", offer, methods=["POST"]),
    ],
    lifespan=lifespan,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
