"""The media node's `/metrics`: rooms, participants, mixer counters and join times."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from media.mixer_loop import MixerLoop


class MixerCollector(Collector):
    """Reads the mixer's own counters at scrape time (nothing to keep in step)."""

    def __init__(self, mixer: MixerLoop) -> None:
        self._mixer = mixer

    def collect(self) -> Iterator[Metric]:
        mixer = self._mixer
        counters = mixer.counters
        yield GaugeMetricFamily("chorus_media_rooms", "Rooms mixed here", value=len(mixer.rooms))
        yield GaugeMetricFamily(
            "chorus_media_participants",
            "Participants connected to rooms here",
            value=sum(len(room.participants) for room in mixer.rooms.values()),
        )
        yield CounterMetricFamily("chorus_media_ticks", "Mixer ticks run", value=counters.ticks)
        yield CounterMetricFamily(
            "chorus_media_ticks_late",
            "Ticks skipped after a stall or started over half a tick late",
            value=counters.ticks_late,
        )
        yield CounterMetricFamily(
            "chorus_media_frames_concealed",
            "Frames filled by concealment because none arrived",
            value=counters.frames_concealed,
        )
        yield CounterMetricFamily(
            "chorus_media_encodes", "Opus encodes (shared and per talker)", value=counters.encodes
        )
        yield GaugeMetricFamily(
            "chorus_media_encodes_per_tick",
            "Opus encodes in the last tick",
            value=counters.last_tick_encodes,
        )
        yield CounterMetricFamily(
            "chorus_media_mixer_busy_seconds",
            "Time the mixer spent mixing and encoding",
            value=counters.busy_seconds,
        )


def join_seconds(registry: CollectorRegistry) -> Histogram:
    """Offer received to connection connected."""
    return Histogram(
        "chorus_media_join_seconds",
        "From an offer received to its connection connected",
        registry=registry,
        buckets=(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5),
    )


def install(registry: CollectorRegistry, mixer: MixerLoop) -> Histogram:
    """Register the node's metrics; the join-time histogram to observe."""
    registry.register(MixerCollector(mixer))
    return join_seconds(registry)
