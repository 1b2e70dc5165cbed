"""A participant's incoming audio: a small queue the mixer takes one frame from each tick.

Opus packets are taken from the connection as they arrive (`receive`, see `tap_opus`) and
decoded by the mixer when it takes them, in the event loop's thread: aiortc's own path (its
jitter buffer in Python, a decoder thread per stream, and a hand-over to the event loop per
frame) cost more than the decode itself, and its buffer held 4 frames, and ~300 ms more for
good after one lost packet. Both queues are bounded and drop their oldest item when full,
which also caps the delay a fast sender can build up. Other codecs, and tracks of other kinds,
still go through aiortc and are drained (`drain`: unread, its queues grow memory, aiortc #554).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable

import av
import numpy as np
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from av import AudioFrame, AudioResampler
from av.audio.codeccontext import AudioCodecContext

from media.audio_format import SAMPLE_RATE, Pcm
from media.reframing import Reframer

DEPTH = 4  # frames (80 ms) or packets: enough for a burst, no more
HALF_SEQUENCE = 1 << 15  # RTP sequence numbers are 16-bit: newer means ahead by less than half


class InboundAudio:
    """One participant's incoming frames, oldest first, at most `depth` of them."""

    def __init__(self, depth: int = DEPTH) -> None:
        self._frames: deque[Pcm] = deque(maxlen=depth)
        self._packets: deque[bytes] = deque(maxlen=depth)
        self._last_sequence: int | None = None
        self._reframer = Reframer()
        self._resampler: AudioResampler | None = None
        self._decoder: AudioCodecContext | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._frames) + len(self._packets)

    def take(self) -> Pcm | None:
        """This tick's frame, or None if none has arrived."""
        while not self._frames and self._packets:
            self._decode(self._packets.popleft())
        return self._frames.popleft() if self._frames else None

    def receive(self, sequence: int, payload: bytes) -> None:
        """Queue one Opus packet as it arrived; a late or repeated one is ignored."""
        last = self._last_sequence
        if last is not None and not 0 < (sequence - last) % (1 << 16) < HALF_SEQUENCE:
            return
        self._last_sequence = sequence
        if len(self._packets) == self._packets.maxlen:
            self.dropped += 1
        self._packets.append(payload)

    def push(self, frame: AudioFrame) -> None:
        """Add a decoded frame of any format, rate and layout."""
        self._add(self._to_mono_48k(frame))

    async def drain(self, track: MediaStreamTrack) -> None:
        """Read `track` until it ends; run as a task for as long as the connection lives."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame):
                self.push(frame)

    def _add(self, samples: Pcm) -> None:
        for pcm in self._reframer.push(samples):
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
            self._frames.append(pcm)

    def _decode(self, payload: bytes) -> None:
        if self._decoder is None:
            decoder = av.CodecContext.create("libopus", "r")
            assert isinstance(decoder, AudioCodecContext)
            decoder.format = "s16"
            decoder.layout = "mono"  # libopus mixes a stereo packet down itself
            decoder.sample_rate = SAMPLE_RATE
            self._decoder = decoder
        try:
            frames = self._decoder.decode(av.Packet(payload))
        except av.FFmpegError:
            return  # a corrupt packet: its tick is concealed
        for frame in frames:
            self.push(frame)

    def _to_mono_48k(self, frame: AudioFrame) -> Pcm:
        if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE:
            samples = frame.to_ndarray().reshape(-1)
            if frame.layout.nb_channels == 1:
                return samples.astype(np.int16, copy=False)
            if frame.layout.nb_channels == 2:
                # What aiortc's Opus decoder gives: interleaved stereo; average the channels.
                pairs = samples.reshape(-1, 2).astype(np.int32)
                return ((pairs[:, 0] + pairs[:, 1]) // 2).astype(np.int16)
        if self._resampler is None:
            self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        parts = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        if not parts:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(parts).astype(np.int16, copy=False)


RtpHandler = Callable[[RtpPacket, int], Awaitable[None]]


def tap_opus(receiver: RTCRtpReceiver, opus_types: set[int], inbound: InboundAudio) -> None:
    """Hand `receiver`'s Opus packets (by payload type) to `inbound` as they arrive; any other
    packet goes on to aiortc as before."""
    handle: RtpHandler = receiver._handle_rtp_packet

    async def tapped(packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type in opus_types:
            inbound.receive(packet.sequence_number, packet.payload)
        else:
            await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = tapped  # type: ignore[method-assign]
