"""Mix-minus arithmetic: int32 sums, each hears all but itself, saturation instead of wrap."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from media.audio_format import FRAME_SAMPLES, INT16_MAX, INT16_MIN, Pcm, saturate, silence
from media.mixing import mix


def constant(value: int) -> Pcm:
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


def test_each_talker_hears_the_others_and_not_itself() -> None:
    heard = {"a": constant(100), "b": constant(20), "c": constant(3)}
    result = mix(heard, minus_for=["a", "b", "c"])
    assert (result.everyone == 123).all()
    assert (result.minus["a"] == 23).all()
    assert (result.minus["b"] == 103).all()
    assert (result.minus["c"] == 120).all()


def test_a_talker_who_is_not_heard_gets_the_whole_mix() -> None:
    result = mix({"a": constant(5)}, minus_for=["z"])
    assert (result.minus["z"] == 5).all()


def test_nobody_heard_is_silence() -> None:
    result = mix({}, minus_for=["a"])
    assert (result.everyone == silence()).all()
    assert (result.minus["a"] == 0).all()


def test_loud_sums_saturate_instead_of_wrapping() -> None:
    heard = {"a": constant(30_000), "b": constant(30_000), "c": constant(-30_000)}
    result = mix(heard, minus_for=["a", "c"])
    assert (result.everyone == 30_000).all()  # 30000 fits: no clipping where none is needed
    assert (result.minus["c"] == INT16_MAX).all()  # 60000 would wrap to a negative int16
    assert (result.minus["a"] == 0).all()
    low = mix({"a": constant(-30_000), "b": constant(-30_000)}, minus_for=[])
    assert (low.everyone == INT16_MIN).all()


def test_saturate_clips_both_ends() -> None:
    wide = np.array([-100_000, -32_769, -5, 32_768, 70_000], dtype=np.int32)
    assert saturate(wide).tolist() == [INT16_MIN, INT16_MIN, -5, INT16_MAX, INT16_MAX]


frames = arrays(np.int16, FRAME_SAMPLES, elements=st.integers(INT16_MIN, INT16_MAX))


@given(st.lists(frames, min_size=1, max_size=6))
def test_mix_minus_equals_the_clipped_sum_of_the_others(heard_list: list[Pcm]) -> None:
    heard = dict(enumerate(heard_list))
    result = mix(heard, minus_for=list(heard))
    for key in heard:
        others = sum((f.astype(np.int64) for k, f in heard.items() if k != key), np.int64(0))
        expected = np.clip(np.zeros(FRAME_SAMPLES, dtype=np.int64) + others, INT16_MIN, INT16_MAX)
        assert result.minus[key].dtype == np.int16
        assert (result.minus[key] == expected).all()
