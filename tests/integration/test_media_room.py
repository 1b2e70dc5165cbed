"""A live mixing room with real aiortc clients in this process: each hears the others, not itself.

Three clients each send their own sine tone; the spectrum of what each receives tells whom it
hears. No Kafka and no HTTP here: the room, the tick loop and the signalling function only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import deque
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, TICK_SECONDS
from media.mixer_loop import MixerLoop
from media.room import Room
from media.signalling import MalformedOffer, answer_offer

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


class Client:
    """A participant's aiortc peer: sends its tone, keeps the last second it received."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ToneTrack(TONES[user_id]))
        self.received: deque[np.ndarray] = deque(maxlen=WINDOW_FRAMES)
        self.fresh = 0  # frames received since the last `listen`
        self._reader: asyncio.Task[None] | None = None
        self.pc.on("track", self._read)

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

    async def join(self, room: Room) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await answer_offer(room, self.user_id, self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def listen(self) -> dict[str, float]:
        """Power at each tone's frequency over a fresh second of received audio."""
        self.fresh = 0
        deadline = time.monotonic() + TIMEOUT
        while self.fresh < WINDOW_FRAMES:
            assert time.monotonic() < deadline, f"{self.user_id} received {self.fresh} frames"
            await asyncio.sleep(0.05)
        audio = np.concatenate(list(self.received))
        spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
        freqs = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)
        return {
            user: float(spectrum[(freqs > f - 5) & (freqs < f + 5)].sum())
            for user, f in TONES.items()
        }

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def assert_hears(power: dict[str, float], heard: set[str], not_heard: set[str]) -> None:
    quietest_heard = min(power[user] for user in heard)
    loudest_not_heard = max(power[user] for user in not_heard)
    assert quietest_heard > RATIO * loudest_not_heard, power


@pytest.fixture
async def mixer() -> AsyncIterator[MixerLoop]:
    loop = MixerLoop()
    loop.start()
    yield loop
    await loop.stop()


async def test_each_hears_the_others_not_itself_then_mute_and_leave(mixer: MixerLoop) -> None:
    left: list[tuple[str, str]] = []
    gone = asyncio.Event()

    def on_leave(room_id: str, user_id: str) -> None:
        left.append((room_id, user_id))
        gone.set()

    room = Room("room-1", on_leave=on_leave)
    mixer.add(room)
    clients = {user: Client(user) for user in TONES}
    try:
        await asyncio.gather(*(client.join(room) for client in clients.values()))
        assert set(room.participants) == set(TONES)

        powers = await asyncio.gather(*(client.listen() for client in clients.values()))
        for user, power in zip(clients, powers, strict=True):
            assert_hears(power, heard=set(TONES) - {user}, not_heard={user})

        room.set_muted("cat", True)
        await clients["ann"].listen()  # let the last unmuted audio pass through
        powers = await asyncio.gather(*(client.listen() for client in clients.values()))
        by_user = dict(zip(clients, powers, strict=True))
        assert_hears(by_user["ann"], heard={"bob"}, not_heard={"ann", "cat"})
        assert_hears(by_user["bob"], heard={"ann"}, not_heard={"bob", "cat"})
        # Muted, "cat" is a listener and gets the one shared encode of everyone heard.
        assert_hears(by_user["cat"], heard={"ann", "bob"}, not_heard={"cat"})

        await clients["bob"].close()
        await asyncio.wait_for(gone.wait(), TIMEOUT)
        assert set(room.participants) == {"ann", "cat"}
        await clients["ann"].listen()  # the room keeps mixing for the others
        assert left == [("room-1", "bob")]
        assert await mixer.release(room.room_id)
        assert room.participants == {}
        assert left == [("room-1", "bob")]  # a released room reports no leaves
        assert not await mixer.release(room.room_id)
    finally:
        await asyncio.gather(*(client.close() for client in clients.values()))
    assert mixer.counters.ticks > 0
    assert mixer.counters.encodes > 0


async def test_rejoining_replaces_the_old_connection_without_a_leave(mixer: MixerLoop) -> None:
    left: list[str] = []
    room = Room("room-2", on_leave=lambda _room, user: left.append(user))
    mixer.add(room)
    first, second, other = Client("ann"), Client("ann"), Client("bob")
    try:
        await first.join(room)
        await other.join(room)
        old = room.participants["ann"]
        await second.join(room)
        assert room.participants["ann"] is not old
        assert old.pc.connectionState == "closed"
        assert_hears(await second.listen(), heard={"bob"}, not_heard={"ann"})
        assert left == []
    finally:
        await asyncio.gather(first.close(), second.close(), other.close())


HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
NO_ICE = (
    HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n"
)


@pytest.mark.parametrize("sdp", ["", "hello", "v=0\r\nm=audio x\r\n", HEAD, NO_ICE])
async def test_a_malformed_offer_is_refused_clearly(sdp: str) -> None:
    room = Room("room-3")
    with pytest.raises(MalformedOffer):
        await answer_offer(room, "ann", sdp)
    assert room.participants == {}
