"""The benchmark's aiortc clients: a paced pre-encoded sender, a receiver that logs every decoded
frame, on-time accounting, and the floor (a bare aiortc-to-aiortc connection).

Clients send Opus packets encoded once before the run (aiortc's sender then skips its own encode
and its pure-Python level loop), so that one client process can carry many clients and the
clients' cost does not swamp what is measured. Every received frame is decoded, as a real client
would, and its arrival time and RTP timestamp are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from av import AudioFrame

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, TICK_SECONDS
from media.voice_encoder import OpusPacket, VoiceEncoder

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
CYCLE = 50  # frames: one second, so that any whole-hertz tone loops seamlessly
WRAP = 1 << 32  # RTP timestamps are 32-bit


def encoded_cycle(frequency: float | None) -> list[bytes]:
    """One second of a tone (None: silence) as 50 Opus packets, taken from a second encoded pass
    so that the encoder's state at the loop's start matches its end."""
    encoder = VoiceEncoder()
    payloads: list[bytes] = []
    for index in range(2 * CYCLE):
        t = (index * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        amplitude = 0.0 if frequency is None else 6000.0
        pcm = (amplitude * np.sin(2 * np.pi * (frequency or 0.0) * t)).astype(np.int16)
        packet = encoder.encode(pcm, index * FRAME_SAMPLES)
        if packet is not None and index >= CYCLE:
            payloads.append(bytes(packet))
    if len(payloads) != CYCLE:
        raise RuntimeError(f"the encoder gave {len(payloads)} packets for {CYCLE} frames")
    return payloads


class PacketTrack(MediaStreamTrack):
    """Pre-encoded audio paced like a microphone: packet k is handed out at start + k x 20 ms."""

    kind = "audio"

    def __init__(self, payloads: list[bytes]) -> None:
        super().__init__()
        self._payloads = payloads
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> OpusPacket:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            await asyncio.sleep(max(0.0, self._start + self._index * TICK_SECONDS - now))
        packet = av.Packet(self._payloads[self._index % len(self._payloads)])
        packet.pts = self._index * FRAME_SAMPLES
        packet.time_base = TIME_BASE
        self._index += 1
        return packet


@dataclass
class ReceiveLog:
    """Every decoded frame one client received: arrival (monotonic s) and RTP timestamp."""

    arrivals: list[float] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    first: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, arrival: float, timestamp: int) -> None:
        self.arrivals.append(arrival)
        self.timestamps.append(timestamp)
        self.first.set()


@dataclass(frozen=True)
class OnTime:
    """Frames due in a window at one or more clients, and how many came in time / never came."""

    due: int
    on_time: int
    missing: int

    def __add__(self, other: OnTime) -> OnTime:
        return OnTime(
            self.due + other.due, self.on_time + other.on_time, self.missing + other.missing
        )

    @property
    def share(self) -> float:
        return self.on_time / self.due if self.due else float("nan")


def on_time(log: ReceiveLog, start: float, end: float, bound: float) -> OnTime:
    """Frames due in [start, end) and how many arrived at most `bound` s after their due time.

    A frame's due time is the stream's best-case latency (the smallest arrival minus RTP time
    seen in the window) plus its RTP time: a playout buffer of `bound` would play it. A frame
    that never arrives (lost, or skipped by the sender) counts as due and not on time.
    """
    if not log.timestamps:
        return OnTime(due=round((end - start) / TICK_SECONDS), on_time=0, missing=0)
    ts0 = log.timestamps[0]
    rtp = np.array([((ts - ts0) % WRAP) / SAMPLE_RATE for ts in log.timestamps])
    arrivals = np.array(log.arrivals)
    inside = (arrivals >= start) & (arrivals < end)
    if not inside.any():
        return OnTime(due=round((end - start) / TICK_SECONDS), on_time=0, missing=0)
    base = float(np.min(arrivals[inside] - rtp[inside]))
    due_at = base + rtp
    slots = np.round(rtp / TICK_SECONDS).astype(np.int64)
    first_slot = int(np.ceil((start - base) / TICK_SECONDS - 1e-9))
    last_slot = int(np.ceil((end - base) / TICK_SECONDS - 1e-9))  # exclusive
    due = last_slot - first_slot
    in_window = (slots >= first_slot) & (slots < last_slot)
    timely = in_window & (arrivals - due_at <= bound + 1e-9)
    arrived = len(set(slots[in_window].tolist()))
    return OnTime(due=due, on_time=len(set(slots[timely].tolist())), missing=due - arrived)


class Peer:
    """One client connection: sends `payloads` (paced), decodes and logs what it receives.

    Two logs: `wire`, each RTP packet as it arrives (what the server delivered, and when), and
    `log`, each frame as it comes out of aiortc's jitter buffer and decoder. The second is a
    client's playout, not the server's delivery: aiortc's audio jitter buffer holds 4 frames,
    and after one lost packet it waits for 16 before it moves on and never shrinks back, which
    adds ~300 ms to every later frame of that stream.
    """

    def __init__(self, payloads: list[bytes]) -> None:
        # No STUN: with no list at all aiortc would try a public server it cannot reach here.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(PacketTrack(payloads))
        self.log = ReceiveLog()
        self.wire = ReceiveLog()
        self._readers: set[asyncio.Task[None]] = set()
        self.pc.on("track", self._read)

    def _read(self, track: MediaStreamTrack) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.receiver.track is track:
                self._log_packets(transceiver.receiver)
        task = asyncio.ensure_future(self._drain(track))
        self._readers.add(task)

    def _log_packets(self, receiver: RTCRtpReceiver) -> None:
        """Log each RTP packet as it arrives, before the jitter buffer."""
        handle = receiver._handle_rtp_packet
        wire = self.wire

        async def logged(packet: RtpPacket, arrival_time_ms: int) -> None:
            wire.add(time.monotonic(), packet.timestamp)
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = logged  # type: ignore[method-assign]

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, AudioFrame) and frame.pts is not None:
                    self.log.add(time.monotonic(), int(frame.pts))

    async def offer(self) -> str:
        """Create the offer (waits for ICE gathering: aiortc does not trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def first_frame(self, timeout: float = 20.0) -> float:
        """Monotonic time of the first decoded frame."""
        await asyncio.wait_for(self.log.first.wait(), timeout)
        return self.log.arrivals[0]

    async def close(self) -> None:
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(asyncio.CancelledError):
                await task


Answerer = Callable[[str], Awaitable[str]]
"""Given an SDP offer, the SDP answer (signalling of whatever kind)."""


async def bare_answer(offer_sdp: str, payloads: list[bytes], keep: list[RTCPeerConnection]) -> str:
    """The floor's other end: a bare aiortc peer that answers and sends `payloads` at once."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    keep.append(pc)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
    pc.addTrack(PacketTrack(payloads))
    await pc.setLocalDescription(await pc.createAnswer())
    return str(pc.localDescription.sdp)


async def floor_joins(samples: int, tone: list[bytes], silence: list[bytes]) -> list[float]:
    """The floor: createOffer -> first decoded frame over a bare aiortc-to-aiortc connection, ms.

    Both ends live in this process and signal by function call; the client's connection (and
    its DTLS certificate) is made before the clock starts, as for the Chorus joins.
    """
    timings = []
    for _ in range(samples):
        client = Peer(silence)
        others: list[RTCPeerConnection] = []
        try:
            started = time.monotonic()
            await client.accept(await bare_answer(await client.offer(), tone, others))
            timings.append((await client.first_frame() - started) * 1000)
        finally:
            await client.close()
            await asyncio.gather(*(pc.close() for pc in others))
    return timings


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")
