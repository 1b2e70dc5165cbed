"""One participant's connection and per-participant mixer state."""

from __future__ import annotations

import asyncio
import contextlib

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from media.concealment import Concealer
from media.inbound_audio import InboundAudio
from media.outbound_track import MixedTrack
from media.speaking import SpeakingDetector
from media.voice_encoder import VoiceEncoder


class Participant:
    """A user's peer connection, what it sends us, what we send it, and its mixer state."""

    def __init__(self, user_id: str, pc: RTCPeerConnection) -> None:
        self.user_id = user_id
        self.pc = pc
        self.inbound = InboundAudio()
        self.outbound = MixedTrack()
        self.concealer = Concealer()
        self.speaking = SpeakingDetector()
        self.muted = False
        self.own_encoder: VoiceEncoder | None = None  # only while a talker
        self._drains: set[asyncio.Task[None]] = set()

    def drain(self, track: MediaStreamTrack) -> None:
        """Read an incoming track for as long as it lives (any kind: unread, it grows memory)."""
        task = asyncio.ensure_future(self.inbound.drain(track))
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def close(self) -> None:
        """Stop sending, stop draining and close the connection."""
        self.outbound.stop()
        await self.pc.close()
        for task in list(self._drains):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
