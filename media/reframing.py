"""Cut incoming audio of any frame size into the mixer's 960-sample frames."""

from __future__ import annotations

import numpy as np

from media.audio_format import FRAME_SAMPLES, Pcm


class Reframer:
    """Buffers samples and hands out whole 20 ms frames (less than one frame stays pending)."""

    def __init__(self) -> None:
        self._pending: Pcm = np.zeros(0, dtype=np.int16)

    def push(self, samples: Pcm) -> list[Pcm]:
        """Add samples; every whole frame now available, oldest first."""
        if self._pending.size == 0 and samples.size == FRAME_SAMPLES:
            return [samples]  # the usual case with Opus at 20 ms: no copy
        buffer = np.concatenate((self._pending, samples))
        whole = buffer.size // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = buffer[whole:].copy()
        return [buffer[i : i + FRAME_SAMPLES] for i in range(0, whole, FRAME_SAMPLES)]
