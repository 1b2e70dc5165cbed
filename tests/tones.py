"""Tone clients for media tests: real aiortc peers that each send a sine tone and tell, by the
spectrum of what they receive, whose tones they hear."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import deque

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, TICK_SECONDS

TONES = {"ann": 440.0, "bob": 660.0, "cat": 880.0}
RATIO = 20.0
WINDOW_FRAMES = 50  # one second of received audio per measurement
TIMEOUT = 15.0  # generous: the machine is shared; the audio itself is a few seconds


class ToneTrack(MediaStreamTrack):
    """A sine tone at 48 kHz mono, paced in real time like a microphone."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self._frequency = frequency
        self._index = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(
                max(0.0, self._start + self._index * TICK_SECONDS - time.monotonic())
            )
        t = (self._index * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        pcm = (6000 * np.sin(2 * np.pi * self._frequency * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._index * FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._index += 1
        return frame


class ToneClient:
    """A participant's aiortc peer: sends the tone of `name`, keeps the last second it received.

    `connect` makes a new peer connection each time (a rejoin after a room moved)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.received: deque[np.ndarray] = deque(maxlen=WINDOW_FRAMES)
        self.fresh = 0  # frames received since the last `listen`
        self.pc: RTCPeerConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def offer(self) -> str:
        """A new connection's offer SDP (gathering complete); the old connection is closed."""
        await self.close()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneTrack(TONES[self.name]))
        self.pc.on("track", self._read)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        assert self.pc is not None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def _read(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.ensure_future(self._drain(track))

    async def _drain(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                stereo = frame.to_ndarray().reshape(-1, frame.layout.nb_channels)
                self.received.append(stereo[:, 0].astype(np.float64))
                self.fresh += 1

    async def listen(self, timeout: float = TIMEOUT) -> dict[str, float]:
        """Power at each tone's frequency over a fresh second of received audio."""
        self.fresh = 0
        deadline = time.monotonic() + timeout
        while self.fresh < WINDOW_FRAMES:
            assert time.monotonic() < deadline, f"{self.name} received {self.fresh} frames"
            await asyncio.sleep(0.05)
        audio = np.concatenate(list(self.received))
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
        freqs = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)
        return {
            name: float(spectrum[(freqs > f - 5) & (freqs < f + 5)].sum())
            for name, f in TONES.items()
        }

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None


def hears(power: dict[str, float], heard: set[str], not_heard: set[str]) -> bool:
    """Every tone of `heard` is over RATIO times louder than any tone of `not_heard`."""
    quietest_heard = min(power[name] for name in heard)
    loudest_not_heard = max(power[name] for name in not_heard)
    return quietest_heard > RATIO * loudest_not_heard


def assert_hears(power: dict[str, float], heard: set[str], not_heard: set[str]) -> None:
    assert hears(power, heard, not_heard), power
