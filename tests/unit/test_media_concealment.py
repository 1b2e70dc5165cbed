"""Concealment: a missing frame is the last one, attenuated, once; then silence."""

from __future__ import annotations

import numpy as np

from media.audio_format import FRAME_SAMPLES
from media.concealment import Concealer


def test_a_missing_frame_repeats_the_last_one_quieter_once_then_silence() -> None:
    concealer = Concealer(gain=0.5)
    frame = np.full(FRAME_SAMPLES, 1000, dtype=np.int16)
    assert concealer.next(frame) == (frame, False)
    repeated, concealed = concealer.next(None)
    assert concealed
    assert repeated is not None and repeated.dtype == np.int16 and (repeated == 500).all()
    assert concealer.next(None) == (None, False)
    assert concealer.next(None) == (None, False)


def test_a_participant_that_never_sent_is_silent() -> None:
    assert Concealer().next(None) == (None, False)


def test_a_new_frame_after_a_gap_is_used_and_can_be_concealed_again() -> None:
    concealer = Concealer(gain=0.5)
    concealer.next(np.full(FRAME_SAMPLES, 8, dtype=np.int16))
    concealer.next(None)
    concealer.next(None)
    fresh = np.full(FRAME_SAMPLES, -64, dtype=np.int16)
    assert concealer.next(fresh)[0] is fresh
    again, concealed = concealer.next(None)
    assert concealed and again is not None and (again == -32).all()
