"""Opus for voice: mono content at a voice bitrate, 20 ms frames, pts on the room's tick timeline.

aiortc's own encoder is fixed at 96 kbps stereo. SDP always names Opus `opus/48000/2` (RFC 7587),
but that only says the decoder can take stereo: each packet's TOC byte says whether it is mono,
and every Opus decoder (aiortc's and browsers') accepts mono packets in that session.
"""

from __future__ import annotations

import fractions
from typing import TypeAlias

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.stream import Stream

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, Pcm

TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
VOICE_BITRATE = 32_000

OpusPacket: TypeAlias = "av.Packet[Stream]"


class VoiceEncoder:
    """One Opus encoder stream; its packets carry the pts they are given (ticks x 960)."""

    def __init__(self, bitrate: int = VOICE_BITRATE) -> None:
        codec = av.CodecContext.create("libopus", "w")
        assert isinstance(codec, AudioCodecContext)
        codec.bit_rate = bitrate
        codec.format = "s16"
        codec.layout = "mono"
        codec.sample_rate = SAMPLE_RATE
        codec.time_base = TIME_BASE
        # "voip" favours intelligibility; 20 ms is also FFmpeg's default frame duration.
        codec.options = {"application": "voip", "frame_duration": "20"}
        self._codec = codec

    def encode(self, pcm: Pcm, pts: int) -> OpusPacket | None:
        """Encode one tick; the packet carries `pts` (1/48000 units), whatever the codec delay."""
        if pcm.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a frame is {FRAME_SAMPLES} mono samples, got {pcm.shape}")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm).reshape(1, FRAME_SAMPLES), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        packets = self._codec.encode(frame)
        if not packets:
            return None
        # libopus hands out one packet per 20 ms frame at once; its own pts is shifted by the
        # encoder's look-ahead, which would make a switch between two encoders audible.
        packet = packets[-1]
        packet.pts = pts
        packet.dts = pts
        packet.time_base = TIME_BASE
        return packet


class SharedSilence:
    """Silence for every stream of a process that hears no one: one encode per tick, not one
    per room and per lone talker (a room's ticks share the process's tick index, so the same
    packet carries the right timestamp for all of them)."""

    def __init__(self) -> None:
        self._encoder = VoiceEncoder()
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._index = -1
        self._packet: OpusPacket | None = None

    def packet(self, index: int) -> tuple[OpusPacket | None, int]:
        """Tick `index`'s silence, and 1 if this call encoded it (0 if it was already made)."""
        if index == self._index:
            return self._packet, 0
        self._index = index
        self._packet = self._encoder.encode(self._silence, index * FRAME_SAMPLES)
        return self._packet, 1
