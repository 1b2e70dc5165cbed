"""Mix-minus: everyone hears the sum of the others, never themselves, saturated to int16."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from media.audio_format import FRAME_SAMPLES, Pcm, Wide, saturate

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Mix(Generic[K]):
    """One tick's outputs: the shared mix of all heard, and each talker's mix without itself."""

    everyone: Pcm
    minus: dict[K, Pcm]


def mix(heard: Mapping[K, Pcm], minus_for: Iterable[K]) -> Mix[K]:
    """Sum the heard frames in int32; give each of `minus_for` the sum less its own frame.

    `heard` holds this tick's frame of every participant who is heard (unmuted, with a frame or
    a concealment). Someone in `minus_for` who is not heard gets the full mix.
    """
    total: Wide = np.zeros(FRAME_SAMPLES, dtype=np.int32)
    for frame in heard.values():
        total += frame
    everyone = saturate(total)
    minus: dict[K, Pcm] = {}
    for key in minus_for:
        own = heard.get(key)
        minus[key] = everyone if own is None else saturate(total - own)
    return Mix(everyone=everyone, minus=minus)
