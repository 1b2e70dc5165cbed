"""A participant's incoming audio: drained all the time into a small queue the mixer takes from.

aiortc's receiver queues are unbounded, so a track nobody reads grows memory without end (aiortc
#554): each incoming track gets a task that reads it until it ends. Frames are turned into the
mixer's format (48 kHz mono int16, 960 samples) and kept in a bounded queue that drops its
oldest frame when full, which also caps the delay a fast sender can build up.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from media.audio_format import SAMPLE_RATE, Pcm
from media.reframing import Reframer

DEPTH = 4  # frames (80 ms): enough for the jitter buffer's bursts, no more


class InboundAudio:
    """One participant's incoming frames, oldest first, at most `depth` of them."""

    def __init__(self, depth: int = DEPTH) -> None:
        self._frames: deque[Pcm] = deque(maxlen=depth)
        self._reframer = Reframer()
        self._resampler: AudioResampler | None = None
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._frames)

    def take(self) -> Pcm | None:
        """This tick's frame, or None if none has arrived."""
        return self._frames.popleft() if self._frames else None

    def push(self, frame: AudioFrame) -> None:
        """Add a decoded frame of any format, rate and layout."""
        for pcm in self._reframer.push(self._to_mono_48k(frame)):
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
            self._frames.append(pcm)

    async def drain(self, track: MediaStreamTrack) -> None:
        """Read `track` until it ends; run as a task for as long as the connection lives."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, AudioFrame):
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
