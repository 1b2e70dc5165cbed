"""Reframing: any incoming frame size comes out as whole 960-sample frames, in order."""

from __future__ import annotations

import numpy as np

from media.audio_format import FRAME_SAMPLES
from media.reframing import Reframer


def test_whole_frames_pass_through_and_odd_sizes_are_regrouped_in_order() -> None:
    reframer = Reframer()
    whole = np.arange(FRAME_SAMPLES, dtype=np.int16)
    assert reframer.push(whole)[0] is whole
    stream = np.arange(5 * FRAME_SAMPLES, dtype=np.int16)
    out = []
    for chunk in np.array_split(stream, [480, 1000, 1001, 3500]):  # 10 ms, odd sizes, empty
        out += reframer.push(chunk)
    assert len(out) == 5
    assert all(frame.size == FRAME_SAMPLES for frame in out)
    assert (np.concatenate(out) == stream).all()


def test_less_than_a_frame_stays_pending() -> None:
    reframer = Reframer()
    assert reframer.push(np.ones(959, dtype=np.int16)) == []
    [frame] = reframer.push(np.ones(1, dtype=np.int16))
    assert frame.size == FRAME_SAMPLES
