"""One room tick without a network: who is mixed, who shares the one encode, what is counted."""

from __future__ import annotations

import fractions

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from av import AudioFrame

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE
from media.mixer_loop import MixerLoop
from media.participant import Participant
from media.room import Room


def tone(frequency: float) -> AudioFrame:
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    pcm = (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
    return frame


async def room_of(
    *users: str, speaking: list[tuple[str, bool]] | None = None, room_id: str = "r"
) -> Room:
    sink = speaking if speaking is not None else []
    room = Room(room_id, on_speaking=lambda _room, user, state: sink.append((user, state)))
    for user in users:
        await room.admit(Participant(user, RTCPeerConnection(RTCConfiguration(iceServers=[]))))
    return room


async def test_talkers_get_their_own_packet_and_listeners_share_one() -> None:
    room = await room_of("ann", "bob", "cat", "dan")
    try:
        room.participants["ann"].inbound.push(tone(440))
        room.participants["bob"].inbound.push(tone(660))
        report = room.tick(7)
        assert report.encodes == 3  # ann's, bob's, and one for cat and dan
        got = {user: await p.outbound.recv() for user, p in room.participants.items()}
        assert got["cat"] is got["dan"]
        assert len({id(got["ann"]), id(got["bob"]), id(got["cat"])}) == 3
        assert {packet.pts for packet in got.values()} == {7 * FRAME_SAMPLES}
    finally:
        await room.close()


async def test_a_muted_participant_is_not_mixed_and_shares_the_listeners_stream() -> None:
    room = await room_of("ann", "bob", "cat")
    try:
        room.set_muted("ann", True)
        room.participants["ann"].inbound.push(tone(440))
        report = room.tick(0)
        assert report.encodes == 1  # nobody is heard, so nobody needs a mix of their own
        assert len(room.participants["ann"].inbound) == 0  # still drained while muted
    finally:
        await room.close()


async def test_a_missing_frame_is_concealed_once_and_counted() -> None:
    room = await room_of("ann", "bob")
    try:
        room.participants["ann"].inbound.push(tone(440))
        assert room.tick(0).concealed == 0
        assert room.tick(1).concealed == 1
        assert room.tick(2).concealed == 0
    finally:
        await room.close()


async def test_speaking_is_reported_after_sustained_audio() -> None:
    changes: list[tuple[str, bool]] = []
    room = await room_of("ann", "bob", speaking=changes)
    try:
        for index in range(10):
            room.participants["ann"].inbound.push(tone(440))
            room.tick(index)
        assert changes == [("ann", True)]
    finally:
        await room.close()


async def test_whoever_hears_no_one_gets_the_one_silence_of_the_process() -> None:
    mixer = MixerLoop()
    rooms = [await room_of("ann", "bob", room_id="r1"), await room_of("cat", "dan", room_id="r2")]
    quiet = await room_of("eve", "fay", room_id="r3")
    for room in [*rooms, quiet]:
        mixer.add(room)
    try:
        rooms[0].participants["ann"].inbound.push(tone(440))
        rooms[1].participants["cat"].inbound.push(tone(660))
        mixer.run_tick(3)
        # A mix for each room's listener, and one silence for the lone talkers and "quiet".
        assert mixer.counters.last_tick_encodes == 3
        ann = await rooms[0].participants["ann"].outbound.recv()
        cat = await rooms[1].participants["cat"].outbound.recv()
        eve = await quiet.participants["eve"].outbound.recv()
        assert ann is cat is eve
        assert ann.pts == 3 * FRAME_SAMPLES
        bob = await rooms[0].participants["bob"].outbound.recv()
        assert bob is not ann
    finally:
        await mixer.stop()
