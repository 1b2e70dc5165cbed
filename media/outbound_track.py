"""The track a participant hears: each tick's already-encoded Opus packet, handed to aiortc.

When `recv()` returns an `av.Packet`, aiortc's RTCRtpSender only packs it (RTP timestamp from the
packet's pts): it skips its own encode and its pure-Python audio-level loop. The sender has no
pacing of its own; it sends when `recv()` returns, so the mixer's tick paces it.
"""

from __future__ import annotations

import asyncio
from collections import deque

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media.voice_encoder import OpusPacket

BACKLOG = 3  # packets; a sender this far behind is stuck, so old audio is dropped


class MixedTrack(MediaStreamTrack):
    """Outgoing audio fed by the mixer; a bounded backlog that drops its oldest packet."""

    kind = "audio"

    def __init__(self, backlog: int = BACKLOG) -> None:
        super().__init__()
        self._packets: deque[OpusPacket] = deque(maxlen=backlog)
        self._ready = asyncio.Event()
        self.dropped = 0

    def put(self, packet: OpusPacket) -> None:
        """Queue this tick's packet (the same object may go to many tracks)."""
        if self.readyState != "live":
            return
        if len(self._packets) == self._packets.maxlen:
            self.dropped += 1
        self._packets.append(packet)
        self._ready.set()

    async def recv(self) -> OpusPacket:
        """The next packet, as soon as the mixer has produced it."""
        while not self._packets:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._packets.popleft()

    def stop(self) -> None:
        super().stop()
        self._packets.clear()
        self._ready.set()  # wake a waiting recv() so that it ends
