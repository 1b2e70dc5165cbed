"""The outgoing track hands out packets in order with a bounded backlog; incoming is bounded too."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, silence
from media.inbound_audio import InboundAudio
from media.outbound_track import MixedTrack
from media.voice_encoder import OpusPacket, VoiceEncoder


def packets(count: int) -> list[OpusPacket]:
    encoder = VoiceEncoder()
    made = [encoder.encode(silence(), pts=i * FRAME_SAMPLES) for i in range(count)]
    return [packet for packet in made if packet is not None]


async def test_recv_waits_for_the_mixer_and_returns_packets_in_order() -> None:
    track = MixedTrack(backlog=3)
    [first, second] = packets(2)
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert not waiting.done()
    track.put(first)
    assert await waiting is first
    track.put(second)
    assert await track.recv() is second


async def test_a_stuck_sender_loses_the_oldest_packets_not_memory() -> None:
    track = MixedTrack(backlog=3)
    made = packets(5)
    for packet in made:
        track.put(packet)
    assert track.dropped == 2
    assert [await track.recv() for _ in range(3)] == made[2:]


async def test_stop_wakes_a_waiting_recv() -> None:
    track = MixedTrack()
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiting


def audio_frame(pcm: np.ndarray, layout: str, rate: int) -> AudioFrame:
    frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    frame.time_base = fractions.Fraction(1, rate)
    frame.pts = 0
    return frame


def test_stereo_from_the_opus_decoder_is_averaged_to_mono() -> None:
    inbound = InboundAudio()
    left = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    right = np.full(FRAME_SAMPLES, 3000, dtype=np.int16)
    inbound.push(audio_frame(np.stack([left, right], axis=1).reshape(-1), "stereo", SAMPLE_RATE))
    frame = inbound.take()
    assert frame is not None and (frame == 2000).all()
    assert inbound.take() is None


def test_other_rates_are_resampled_to_48k_frames() -> None:
    inbound = InboundAudio(depth=100)
    for _ in range(10):  # 200 ms of 8 kHz audio in 20 ms frames
        inbound.push(audio_frame(np.full(160, 500, dtype=np.int16), "mono", 8000))
    assert len(inbound) >= 8  # the resampler keeps a little back
    frame = inbound.take()
    assert frame is not None and frame.size == FRAME_SAMPLES


def test_the_queue_is_bounded_and_drops_the_oldest() -> None:
    inbound = InboundAudio(depth=4)
    for value in range(10):
        inbound.push(
            audio_frame(np.full(FRAME_SAMPLES, value, dtype=np.int16), "mono", SAMPLE_RATE)
        )
    assert len(inbound) == 4 and inbound.dropped == 6
    frames = [inbound.take() for _ in range(4)]
    assert [int(f[0]) for f in frames if f is not None] == [6, 7, 8, 9]


def opus_payloads(levels: list[int]) -> list[bytes]:
    """One 20 ms Opus packet per level (a frame of that constant value)."""
    encoder = VoiceEncoder()
    made = [encoder.encode(np.full(FRAME_SAMPLES, level, dtype=np.int16), 0) for level in levels]
    return [bytes(packet) for packet in made if packet is not None]


def test_opus_packets_are_decoded_when_taken_late_and_repeated_ones_ignored() -> None:
    inbound = InboundAudio(depth=4)
    first, second, third = opus_payloads([0, 0, 0])
    inbound.receive(65535, first)
    inbound.receive(0, second)  # sequence numbers wrap around
    inbound.receive(0, second)  # a repeat
    inbound.receive(65535, first)  # late: its turn has passed
    inbound.receive(1, third)
    assert len(inbound) == 3
    frames = [inbound.take() for _ in range(3)]
    assert all(f is not None and f.shape == (FRAME_SAMPLES,) for f in frames)
    assert inbound.take() is None


def test_the_packet_queue_is_bounded_and_drops_the_oldest() -> None:
    inbound = InboundAudio(depth=4)
    for sequence, payload in enumerate(opus_payloads([0] * 6)):
        inbound.receive(sequence, payload)
    assert len(inbound) == 4 and inbound.dropped == 2
