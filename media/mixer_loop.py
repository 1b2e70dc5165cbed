"""The one tick loop of a media process: every 20 ms, each room mixes, encodes and sends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from media.room import Room
from media.tick_clock import TickSchedule
from media.voice_encoder import SharedSilence

log = logging.getLogger(__name__)


@dataclass
class MixerCounters:
    """Totals since start, for /metrics."""

    ticks: int = 0
    ticks_late: int = 0  # skipped after a stall, or started more than half a tick late
    frames_concealed: int = 0
    encodes: int = 0
    last_tick_encodes: int = 0
    busy_seconds: float = 0.0  # time spent mixing and encoding


class MixerLoop:
    """All rooms of this process, ticked together on one schedule."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.rooms: dict[str, Room] = {}
        self.counters = MixerCounters()
        self.silence = SharedSilence()
        self._now = now
        self._task: asyncio.Task[None] | None = None

    def add(self, room: Room) -> None:
        """Start mixing a room from the next tick."""
        room.silence = self.silence
        self.rooms[room.room_id] = room

    async def release(self, room_id: str) -> bool:
        """Stop mixing a room and close its connections; False if it was not here."""
        room = self.rooms.pop(room_id, None)
        if room is None:
            return False
        await room.close()
        return True

    def run_tick(self, index: int) -> None:
        """Mix tick `index` in every room."""
        encodes = 0
        for room in list(self.rooms.values()):
            report = room.tick(index)
            encodes += report.encodes
            self.counters.frames_concealed += report.concealed
        self.counters.ticks += 1
        self.counters.encodes += encodes
        self.counters.last_tick_encodes = encodes

    async def run(self) -> None:
        """Tick until cancelled."""
        schedule = TickSchedule(self._now)
        while True:
            tick = schedule.next_tick()
            self.counters.ticks_late += tick.skipped
            if tick.wait > 0:
                await asyncio.sleep(tick.wait)
            started = self._now()
            if started - schedule.deadline(tick.index) > schedule.period / 2:
                self.counters.ticks_late += 1
            try:
                self.run_tick(tick.index)
            except Exception:
                # One bad tick must not stop every room of the process.
                log.exception("mixer tick %d failed", tick.index)
            self.counters.busy_seconds += self._now() - started

    def start(self) -> None:
        """Start ticking in the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="mixer")

    async def stop(self) -> None:
        """Stop ticking and close every room."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        rooms = list(self.rooms.values())
        self.rooms.clear()
        await asyncio.gather(*(room.close() for room in rooms))
