"""A media node: hosts the rooms the log assigns to it, allocates rooms for the partitions it owns,
and tells the team deciders who left and who speaks.

Everything it decides follows from two topics read from the beginning: the events (calls,
participants, rooms) and the media-nodes heartbeats (the directory). A node hosts a room when
the latest `media.room_allocated` of an active call names it, so a restarted node never serves a
room that was moved away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from config.settings import Settings
from media import node_metrics
from media.allocation import Allocate, Allocator, Release, leave_id, speaking_id
from media.call_view import CallView
from media.directory import Directory, NodeStatus
from media.feed import KafkaFeed, Record
from media.mixer_loop import MixerLoop
from media.outbox import Outbox
from media.room import Room
from schemas.commands import AllocateRoom, LeaveCall, ReleaseRoom, ReportSpeaking

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
ALLOCATION_CHECK_SECONDS = 0.25
STARTUP_WAIT = 5.0
DRAIN_SECONDS = 5.0  # how long a stopping node waits for its rooms to move


class MediaNode:
    """One media node's state and duties; `start` in a running loop, `stop` to drain and close."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.node_id = settings.media_node()
        self.actor = f"media:{self.node_id}"
        self.base_url = settings.media_base_url()
        self.view = CallView()
        self.directory = Directory()
        self.mixer = MixerLoop()
        self.allocator = Allocator(self.node_id)
        self.join_seconds = node_metrics.install(registry, self.mixer)
        self.draining = False
        self.caught_up = False
        self._speaking_changes: dict[tuple[str, str], int] = {}  # (call, user) -> reports sent
        self._changed: asyncio.Condition | None = None
        self._outbox: Outbox | None = None
        self._feed: KafkaFeed | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        """Start reading the log, mixing and beating; returns once caught up with the log (or
        after STARTUP_WAIT, e.g. with Kafka down: the node then catches up in the background)."""
        settings = self.settings
        bootstrap = settings.require_kafka()
        self._changed = asyncio.Condition()
        self._outbox = await asyncio.to_thread(Outbox, bootstrap, settings.topics)
        self._spawn(self._read_log(bootstrap))
        self.mixer.start()
        self._spawn(self._heartbeats())
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: self.caught_up, STARTUP_WAIT)

    async def _read_log(self, bootstrap: str) -> None:
        """Start the feed, retrying while Kafka is unreachable."""
        while self._feed is None:
            feed = KafkaFeed(bootstrap, self.settings.topics, self._on_batch)
            try:
                await asyncio.to_thread(feed.start, asyncio.get_running_loop())
            except Exception as exc:
                log.warning("media: cannot read the log yet: %s", exc)
                await asyncio.to_thread(feed.stop)
                await asyncio.sleep(1.0)
                continue
            self._feed = feed

    async def stop(self) -> None:
        """Drain (say so, wait a little for the rooms to move), then close everything."""
        if self._outbox is not None:
            await self._drain()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.mixer.stop()
        if self._feed is not None:
            await asyncio.to_thread(self._feed.stop)
        if self._outbox is not None:
            await self._outbox.forget(self.node_id)
            await self._outbox.close()

    async def _drain(self) -> None:
        self.draining = True
        await self._beat()
        others = [n for n in self.directory.allocators(time.time()) if n != self.node_id]
        if others and self.view.hosted_by(self.node_id):
            with contextlib.suppress(TimeoutError):
                await self.wait_for(lambda: not self.view.hosted_by(self.node_id), DRAIN_SECONDS)

    def ready(self) -> bool:
        """Takes new rooms: caught up with the log and not draining."""
        return self.caught_up and not self.draining

    # -- the log ------------------------------------------------------------------------------

    def _on_batch(self, records: list[Record], caught_up: bool) -> None:
        topics = self.settings.topics
        for record in records:
            if record.topic == topics.media_nodes:
                self.directory.apply(record.key, record.value)
            elif record.value:
                try:
                    decoded = orjson.loads(record.value)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(decoded, dict):
                    self.view.apply_record(record.partition, decoded)
        self.caught_up = self.caught_up or caught_up
        if self.caught_up:
            self._reconcile()
            self._allocate()
        self._notify()

    def _notify(self) -> None:
        changed = self._changed
        if changed is None:
            return

        async def notify() -> None:
            async with changed:
                changed.notify_all()

        self._spawn(notify())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Until `predicate` holds after a batch of the log (TimeoutError after `timeout`)."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    # -- hosting ------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Host exactly the rooms the log gives this node, with the log's participants and mutes."""
        hosted = {call.call_id: call for call in self.view.hosted_by(self.node_id)}
        for room_id in list(self.mixer.rooms):
            if room_id not in hosted:
                # Ended, released or moved: close its connections (no leaves are reported).
                self._spawn(_release(self.mixer, room_id))
                for key in [key for key in self._speaking_changes if key[0] == room_id]:
                    del self._speaking_changes[key]
        for call_id, call in hosted.items():
            room = self.mixer.rooms.get(call_id)
            if room is None:
                room = Room(call_id, on_leave=self._on_leave, on_speaking=self._on_speaking)
                self.mixer.add(room)
            for user_id, participant in list(room.participants.items()):
                if user_id in call.participants:
                    room.set_muted(user_id, call.participants[user_id])
                else:
                    self._spawn(room.drop(participant))  # left the call: out of the mix

    def room_for(self, call_id: str) -> Room | None:
        """The room of `call_id` if this node hosts it now."""
        call = self.view.calls.get(call_id)
        if call is None or not call.active or call.node != self.node_id:
            return None
        return self.mixer.rooms.get(call_id)

    def joined(self, call_id: str, user_id: str, received: float) -> None:
        """Time the join of an answered offer (received at `received`, perf_counter) until its
        connection is connected."""
        room = self.mixer.rooms.get(call_id)
        participant = None if room is None else room.participants.get(user_id)
        if participant is None:
            return
        pc = participant.pc
        observed = False

        def on_state() -> None:
            nonlocal observed
            if pc.connectionState == "connected" and not observed:
                observed = True
                self.join_seconds.observe(time.perf_counter() - received)

        pc.on("connectionstatechange", on_state)
        on_state()

    def _on_leave(self, call_id: str, user_id: str) -> None:
        call = self.view.calls.get(call_id)
        if call is None or not self.view.is_participant(call_id, user_id) or self._outbox is None:
            return  # already out of the call (left, ended): nothing to record
        command_id = leave_id(call_id, user_id, call.joins.get(user_id, 0))
        self._outbox.command(call.team_id, command_id, user_id, LeaveCall(call_id=call_id))

    def _on_speaking(self, call_id: str, user_id: str, speaking: bool) -> None:
        call = self.view.calls.get(call_id)
        if call is None or self._outbox is None:
            return
        key = (call_id, user_id)
        change = self._speaking_changes[key] = self._speaking_changes.get(key, 0) + 1
        joins = call.joins.get(user_id, 0)
        command_id = speaking_id(call_id, user_id, call.allocations, joins, change)
        payload = ReportSpeaking(call_id=call_id, user_id=user_id, speaking=speaking)
        self._outbox.command(call.team_id, command_id, self.actor, payload)

    # -- allocation and heartbeats ------------------------------------------------------------

    def _allocate(self) -> None:
        if self.draining or self._outbox is None:
            return
        for step in self.allocator.plan(self.view, self.directory, time.time(), time.monotonic):
            call = step.call
            if isinstance(step, Allocate):
                url = f"{step.base_url}/v1/rooms/{call.call_id}/offer"
                payload: AllocateRoom | ReleaseRoom = AllocateRoom(
                    call_id=call.call_id, node=step.node, offer_url=url
                )
            else:
                assert isinstance(step, Release)
                payload = ReleaseRoom(call_id=call.call_id)
            self._outbox.command(call.team_id, step.command_id, self.actor, payload)

    def status(self) -> NodeStatus:
        hosted = self.view.hosted_by(self.node_id)
        return NodeStatus(
            node_id=self.node_id,
            region=self.settings.media_region,
            base_url=self.base_url,
            rooms=len(hosted),
            participants=sum(len(call.participants) for call in hosted),
            capacity=self.settings.media_capacity,
            draining=self.draining,
            at_ms=int(time.time() * 1000),
        )

    async def _beat(self) -> None:
        assert self._outbox is not None
        status = self.status()
        # Known to itself at once: a lone node need not wait to read its own heartbeat back.
        self.directory.apply(status.node_id.encode(), status.to_bytes())
        await self._outbox.heartbeat(status)

    async def _heartbeats(self) -> None:
        """A heartbeat every second; allocation checked more often, so that a silent node's
        rooms move soon after it is found silent."""
        last_beat = 0.0
        while True:
            try:
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    last_beat = time.monotonic()
                    await self._beat()
                if self.caught_up:
                    self._allocate()
            except Exception:
                log.exception("media heartbeat failed")
            await asyncio.sleep(ALLOCATION_CHECK_SECONDS)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _release(mixer: MixerLoop, room_id: str) -> None:
    await mixer.release(room_id)
