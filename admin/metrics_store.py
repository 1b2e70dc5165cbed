"""A day of samples in memory: a ring of (time, value) per series, and of bucket counts per
histogram, with the sums, latest values and quantiles the metrics page shows.

The admin service samples the services' /metrics every few seconds (admin/metrics.py); this
store is what it keeps. It is lost on restart, which is what a page for `chorus up` users can
afford: a real deployment keeps history in Prometheus (deploy/prometheus.yml).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

HOUR = 3600.0
DAY = 86400.0

_T = TypeVar("_T")
Point = tuple[float, float]  # (epoch seconds, value)
Buckets = tuple[tuple[float, float], ...]  # (upper bound, observations in it), cumulative


@dataclass(frozen=True)
class Window:
    """The part of the history a number or a plot covers."""

    name: str
    seconds: float


WINDOWS = (Window("hour", HOUR), Window("day", DAY))


class MetricsStore:
    """Series of numbers and of histogram bucket deltas, each kept for a day."""

    def __init__(self, interval: float, keep: float = DAY) -> None:
        self.interval = interval
        self._size = max(2, math.ceil(keep / interval) + 1)
        self._series: dict[str, deque[Point]] = {}
        self._histograms: dict[str, deque[tuple[float, Buckets]]] = {}

    def add(self, name: str, at: float, value: float) -> None:
        """Record one value of a series."""
        self._ring(self._series, name).append((at, value))

    def add_buckets(self, name: str, at: float, buckets: Buckets) -> None:
        """Record the observations a histogram made since the last sample (cumulative buckets)."""
        self._ring(self._histograms, name).append((at, buckets))

    def names(self, prefix: str) -> list[str]:
        """Series whose name starts with `prefix`, sorted."""
        return sorted(name for name in self._series if name.startswith(prefix))

    def points(self, name: str, since: float) -> list[Point]:
        return [point for point in self._series.get(name, ()) if point[0] >= since]

    def latest(self, name: str) -> float | None:
        ring = self._series.get(name)
        return ring[-1][1] if ring else None

    def total(self, name: str, since: float) -> float:
        return sum(value for _, value in self.points(name, since))

    def peak(self, name: str, since: float) -> float | None:
        values = [value for _, value in self.points(name, since)]
        return max(values) if values else None

    def quantile(self, name: str, since: float, q: float) -> float | None:
        """The q-quantile of every observation since `since` (None: there were none)."""
        merged = merge_buckets(b for at, b in self._histograms.get(name, ()) if at >= since)
        return bucket_quantile(merged, q)

    def quantile_points(self, name: str, since: float, q: float) -> list[Point]:
        """The q-quantile of each sample's observations (samples without any left out)."""
        points = []
        for at, buckets in self._histograms.get(name, ()):
            if at >= since:
                value = bucket_quantile(buckets, q)
                if value is not None:
                    points.append((at, value))
        return points

    def _ring(self, rings: dict[str, deque[_T]], name: str) -> deque[_T]:
        ring = rings.get(name)
        if ring is None:
            ring = rings[name] = deque(maxlen=self._size)
        return ring


def merge_buckets(many: Iterable[Buckets]) -> Buckets:
    """Buckets of several samples of one histogram added up (same bounds)."""
    total: dict[float, float] = {}
    for buckets in many:
        for bound, count in buckets:
            total[bound] = total.get(bound, 0.0) + count
    return tuple(sorted(total.items()))


def bucket_delta(now: Buckets, before: Buckets | None) -> Buckets:
    """Observations between two scrapes of a cumulative histogram; all of `now` after a reset."""
    if before is None:
        return now
    earlier = dict(before)
    if any(count < earlier.get(bound, 0.0) for bound, count in now):
        return now  # the process restarted: its histogram started again from nothing
    return tuple((bound, count - earlier.get(bound, 0.0)) for bound, count in now)


def bucket_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket the rank falls in."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound  # above the highest finite bound: say that bound
            width = count - lower_count
            share = 0.0 if width <= 0 else (rank - lower_count) / width
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def counter_delta(now: float, before: float | None) -> float:
    """How much a counter grew between two scrapes; all of it after a reset (a restart)."""
    if before is None:
        return 0.0
    return now if now < before else now - before
