"""Audio levels in dBov: from samples (RMS, numpy) or from an RFC 6464 header extension."""

from __future__ import annotations

import math

import numpy as np

from media.audio_format import Pcm

SILENT_DBOV = -127.0  # RFC 6464's floor: level 127 means -127 dBov or quieter
FULL_SCALE = 32_768.0


def rms_dbov(frame: Pcm) -> float:
    """The frame's RMS level relative to a full-scale square wave, floored at -127 dBov."""
    if frame.size == 0:
        return SILENT_DBOV
    mean_square = float(np.mean(np.square(frame, dtype=np.float64)))
    if mean_square <= 0.0:
        return SILENT_DBOV
    return max(SILENT_DBOV, 10.0 * math.log10(mean_square / (FULL_SCALE * FULL_SCALE)))


def rfc6464_dbov(level: int) -> float:
    """An RFC 6464 level (0..127, meaning -level dBov) as dBov."""
    if not 0 <= level <= 127:
        raise ValueError(f"RFC 6464 level out of range: {level}")
    return -float(level)
