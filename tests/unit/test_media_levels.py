"""Levels in dBov from samples (RMS) and from RFC 6464 values."""

from __future__ import annotations

import numpy as np
import pytest

from media.audio_format import FRAME_SAMPLES, silence
from media.levels import SILENT_DBOV, rfc6464_dbov, rms_dbov


def test_a_full_scale_square_wave_is_zero_dbov() -> None:
    square = np.where(np.arange(FRAME_SAMPLES) % 2 == 0, -32_768, 32_767).astype(np.int16)
    assert rms_dbov(square) == pytest.approx(0.0, abs=0.01)


def test_a_sine_at_tenth_of_full_scale_is_about_minus_23_dbov() -> None:
    t = np.arange(FRAME_SAMPLES) / 48_000
    sine = (3_277 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    assert rms_dbov(sine) == pytest.approx(-23.0, abs=0.1)  # -20 dB amplitude, -3 dB for a sine


def test_silence_is_the_floor() -> None:
    assert rms_dbov(silence()) == SILENT_DBOV
    assert rms_dbov(np.ones(FRAME_SAMPLES, dtype=np.int16)) == pytest.approx(-90.3, abs=0.1)


def test_rfc6464_levels_are_negated_and_checked() -> None:
    assert rfc6464_dbov(0) == 0.0
    assert rfc6464_dbov(127) == -127.0
    with pytest.raises(ValueError):
        rfc6464_dbov(128)
