"""The one audio format the mixer works in: 48 kHz mono int16, 960 samples per 20 ms tick."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
TICK_SECONDS = 0.020
FRAME_SAMPLES = 960  # SAMPLE_RATE * TICK_SECONDS
INT16_MIN = -32_768
INT16_MAX = 32_767

Pcm: TypeAlias = npt.NDArray[np.int16]
"""One tick of audio: a 1-D int16 array of FRAME_SAMPLES samples."""

Wide: TypeAlias = npt.NDArray[np.int32]
"""A sum of frames, kept in int32 until it is saturated back to int16."""


def silence() -> Pcm:
    """A frame of silence."""
    return np.zeros(FRAME_SAMPLES, dtype=np.int16)


def saturate(wide: Wide) -> Pcm:
    """Clip a wide sum to the int16 range (a limiter, never a wrap-around)."""
    return np.clip(wide, INT16_MIN, INT16_MAX).astype(np.int16)
