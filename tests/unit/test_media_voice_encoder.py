"""The voice encoder: mono Opus packets with the tick's pts that decode back to the tone."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from av.audio.codeccontext import AudioCodecContext

from media.audio_format import FRAME_SAMPLES, SAMPLE_RATE
from media.voice_encoder import VoiceEncoder


def tone(index: int, frequency: float = 440.0) -> np.ndarray:
    t = (index * FRAME_SAMPLES + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
    return (8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def test_packets_are_mono_voice_opus_on_the_tick_timeline_and_decode_to_the_tone() -> None:
    encoder = VoiceEncoder(bitrate=32_000)
    decoder = av.CodecContext.create("libopus", "r")
    assert isinstance(decoder, AudioCodecContext)
    decoded = []
    sizes = []
    for index in range(100, 150):  # a room's tick count, not zero
        packet = encoder.encode(tone(index), pts=index * FRAME_SAMPLES)
        assert packet is not None
        assert packet.pts == index * FRAME_SAMPLES
        assert packet.time_base == fractions.Fraction(1, SAMPLE_RATE)
        assert bytes(packet)[0] & 0x04 == 0  # the TOC byte's stereo flag is off
        sizes.append(packet.size)
        for frame in decoder.decode(av.Packet(bytes(packet))):
            decoded.append(frame.to_ndarray().reshape(-1, frame.layout.nb_channels)[:, 0])
    # 32 kbps is 80 bytes per 20 ms; aiortc's 96 kbps would be three times that.
    assert 40 < np.mean(sizes[5:]) < 120
    audio = np.concatenate(decoded)[4800:].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(audio))
    peak = np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[np.argmax(spectrum)]
    assert peak == pytest.approx(440.0, abs=3.0)


def test_a_frame_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        VoiceEncoder().encode(np.zeros(480, dtype=np.int16), pts=0)
