"""Loss concealment for one participant: the last frame once more, quieter, then silence."""

from __future__ import annotations

import numpy as np

from media.audio_format import Pcm

REPEAT_GAIN = 0.5  # about -6 dB: a repeated frame should fade, not ring


class Concealer:
    """Fills a tick with no frame from a participant: repeat the last one attenuated, once."""

    def __init__(self, gain: float = REPEAT_GAIN) -> None:
        self._gain = gain
        self._last: Pcm | None = None

    def next(self, frame: Pcm | None) -> tuple[Pcm | None, bool]:
        """This tick's frame (None for silence) and whether it was concealed."""
        if frame is not None:
            self._last = frame
            return frame, False
        last, self._last = self._last, None
        if last is None:
            return None, False
        # Multiplying int16 by a gain below 1 cannot overflow; round towards zero.
        return (last * self._gain).astype(np.int16), True
