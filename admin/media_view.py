"""Media rooms and the node each is on, from what the media tier publishes.

The admin service reads the media-nodes topic (each node's heartbeat: region, rooms, capacity)
and the events topic (calls started and ended, rooms allocated and released) as a media node
does, with the media tier's own reader and folds (`KafkaFeed`, `Directory`, `CallView`): the
view is the one the nodes act on, not a second interpretation of the same records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from admin.auth import operator_route
from config.settings import Settings
from media.call_view import CallView
from media.directory import Directory
from media.feed import KafkaFeed, Record
from schemas.clock import format_millis

log = logging.getLogger(__name__)

#: Wait this long before trying again when the feed cannot start (Kafka down, no topics yet).
RETRY_SECONDS = 5.0


class MediaWatch:
    """The directory of media nodes and the calls' rooms, kept current while the service runs."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.directory = Directory()
        self.calls = CallView()
        self.caught_up = False
        self._feed: KafkaFeed | None = None

    def apply(self, records: list[Record], caught_up: bool) -> None:
        """Fold a batch of the two topics (called in the event loop)."""
        for record in records:
            if record.topic == self._settings.topics.media_nodes:
                self.directory.apply(record.key, record.value)
            elif record.value:
                try:
                    decoded = orjson.loads(record.value)
                except ValueError:
                    continue
                if isinstance(decoded, dict):
                    self.calls.apply_record(record.partition, decoded)
        self.caught_up = self.caught_up or caught_up

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Read the topics in the background while the context is open."""
        if not self._settings.kafka_bootstrap:  # a database-only test: nothing to read
            yield
            return
        task = asyncio.create_task(self._start())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if self._feed is not None:
                await asyncio.to_thread(self._feed.stop)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            feed = KafkaFeed(self._settings.require_kafka(), self._settings.topics, self.apply)
            try:
                await asyncio.to_thread(feed.start, loop)
            except Exception as exc:  # Kafka not there yet, or the topics not made yet
                log.warning("media view: cannot read the topics yet (%s); retrying", exc)
                await asyncio.to_thread(feed.stop)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._feed = feed
            return

    def nodes(self, now: float) -> list[dict[str, Any]]:
        """Every node heard of, with whether it is alive and the rooms the log places on it."""
        placed: dict[str, int] = {}
        for call in self.calls.calls.values():
            if call.node is not None:
                placed[call.node] = placed.get(call.node, 0) + 1
        return [
            {
                "node_id": status.node_id,
                "region": status.region,
                "base_url": status.base_url,
                "alive": self.directory.alive(status.node_id, now),
                "draining": status.draining,
                "rooms": status.rooms,  # as the node last reported
                "rooms_placed": placed.get(status.node_id, 0),  # as the log records
                "participants": status.participants,
                "capacity": status.capacity,
                "heard_at": format_millis(status.at_ms),
            }
            for status in sorted(self.directory.nodes.values(), key=lambda s: s.node_id)
        ]

    def rooms(self, now: float) -> list[dict[str, Any]]:
        """Calls with a room or still waiting for one, with their node."""
        return [
            {
                "call_id": call.call_id,
                "team_id": call.team_id,
                "active": call.active,
                "node": call.node,
                "node_alive": call.node is not None and self.directory.alive(call.node, now),
                "offer_url": call.offer_url,
                "participants": len(call.participants),
                "allocations": call.allocations,
            }
            for call in sorted(self.calls.calls.values(), key=lambda c: c.call_id)
        ]

    def rooms_per_node(self) -> dict[str, int]:
        """Rooms each node reported in its latest heartbeat."""
        return {node: status.rooms for node, status in self.directory.nodes.items()}


def media_routes(watch: MediaWatch) -> list[Route]:
    """`GET /v1/admin/media/rooms`: the media nodes and the calls' rooms."""

    async def get_rooms(request: Request) -> Response:
        now = time.time()
        return JSONResponse(
            {
                "caught_up": watch.caught_up,  # False: still reading the log, the view is partial
                "nodes": watch.nodes(now),
                "rooms": watch.rooms(now),
            }
        )

    return [operator_route("/v1/admin/media/rooms", get_rooms, ["GET"])]
