"""A live mixing room with real aiortc clients in this process: each hears the others, not itself.

Three clients each send their own sine tone; the spectrum of what each receives tells whom it
hears. No Kafka and no HTTP here: the room, the tick loop and the signalling function only.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest

from bench.rtc import WRAP, Peer, ReceiveLog, encoded_cycle
from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE
from media.mixer_loop import MixerLoop
from media.room import Room
from media.signalling import MalformedOffer, answer_offer
from tests.tones import TIMEOUT, TONES, ToneClient, assert_hears


class Client(ToneClient):
    """A tone client that joins a room in this process, without HTTP."""

    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id

    async def join(self, room: Room) -> None:
        answer = await answer_offer(room, self.user_id, await self.offer())
        await self.accept(answer)


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


DRIFT_SECONDS = 8.0


def floor_lateness(log: ReceiveLog, start: float, end: float) -> float:
    """The smallest (arrival - RTP time) among packets arriving in [start, end): the path's
    latency without its jitter, which a clock drift or a growing queue would push up."""
    ts0 = log.timestamps[0]
    return min(
        arrival - ((ts - ts0) % WRAP) / SAMPLE_RATE
        for arrival, ts in zip(log.arrivals, log.timestamps, strict=True)
        if start <= arrival < end
    )


async def test_the_mixed_stream_keeps_pace_with_its_rtp_clock(mixer: MixerLoop) -> None:
    """Packets leave on the tick and carry its timestamp: over seconds, their latency against
    their own RTP time does not grow (a drift of 1 ms/s would add 6 ms here)."""
    room = Room("room-4")
    mixer.add(room)
    peers = [Peer(encoded_cycle(440.0)), Peer(encoded_cycle(None))]
    try:
        for index, peer in enumerate(peers):
            await peer.accept(await answer_offer(room, f"user-{index}", await peer.offer()))
        await asyncio.gather(*(peer.first_frame(TIMEOUT) for peer in peers))
        started = time.monotonic()
        await asyncio.sleep(DRIFT_SECONDS)  # the measuring window itself
        for peer in peers:
            steps = {b - a for a, b in itertools.pairwise(peer.wire.timestamps)}
            assert all(step > 0 and step % FRAME_SAMPLES == 0 for step in steps), steps
            early = floor_lateness(peer.wire, started + 0.5, started + 1.5)
            late = floor_lateness(peer.wire, started + 6.5, started + 7.5)
            assert late - early < 0.003, f"latency grew {1000 * (late - early):.1f} ms in 6 s"
    finally:
        await asyncio.gather(*(peer.close() for peer in peers))
