"""The admin service's sampler: every few seconds, the services' /metrics, the calls read model,
the decider's lag on the commands topic and the media nodes' rooms, into the metrics store.

Rates come from counter deltas between two samples (a counter that went back means its process
restarted: counted as a restart, and its new value taken as the delta). Histograms are kept as
the observations made between samples, so that quantiles over an hour or a day are exact to the
bucket. The figures that no service exports (decider lag, active calls, rooms per node) are
also exported on the admin service's own /metrics, for Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.media_view import MediaWatch
from admin.metrics_scrape import SUPERVISOR, Scrape, Target, scrape_all, targets
from admin.metrics_store import WINDOWS, Buckets, MetricsStore, bucket_delta, counter_delta
from config.settings import Settings
from db.tables import rm_calls
from schemas.clock import format_millis

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 10.0
HISTOGRAMS = {
    "join_seconds": "chorus_media_join_seconds",
    "decide_seconds": "chorus_decide_seconds",
}


class Exported:
    """The admin service's own gauges of what it computes (for Prometheus and Grafana)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "chorus_decider_lag",
            "Commands on the topic not yet decided (committed offset behind the end)",
            ["partition"],
            registry=registry,
        )
        self.calls_active = Gauge("chorus_calls_active", "Active calls", registry=registry)
        self.participants = Gauge(
            "chorus_call_participants", "Participants of active calls", registry=registry
        )
        self.node_rooms = Gauge(
            "chorus_media_node_rooms",
            "Rooms each media node reported in its last heartbeat",
            ["node"],
            registry=registry,
        )


class Sampler:
    """Takes a sample every `interval` seconds while running; `sample()` takes one now."""

    def __init__(
        self,
        settings: Settings,
        store: MetricsStore,
        media: MediaWatch | None = None,
        services: list[Target] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.media = media
        self.services = targets(settings) if services is None else services
        self._counters: dict[str, dict[Any, float]] = {}  # service -> its counters last time
        self._totals: dict[str, float] = {}  # "service/metric" -> its value last time
        self._buckets: dict[str, Buckets] = {}  # "service/histogram" -> cumulative last time
        self._last_at: float | None = None
        self._calls: float | None = None

    async def sample(
        self,
        client: httpx.AsyncClient,
        engine: AsyncEngine | None,
        lag: LagReader | None,
        exported: Exported | None = None,
        at: float | None = None,
    ) -> None:
        """Take one sample of everything."""
        at = time.time() if at is None else at
        self.record_scrapes(at, await scrape_all(client, self.services))
        if engine is not None:
            await self._sample_calls(engine, at, exported)
        if lag is not None:
            for partition, behind in (await asyncio.to_thread(lag.read)).items():
                self.store.add(f"lag.{partition}", at, behind)
                if exported is not None:
                    exported.lag.labels(str(partition)).set(behind)
        if self.media is not None:
            for node, rooms in self.media.rooms_per_node().items():
                self.store.add(f"node_rooms.{node}", at, rooms)
                if exported is not None:
                    exported.node_rooms.labels(node).set(rooms)

    def record_scrapes(self, at: float, scrapes: dict[str, Scrape | None]) -> None:
        """Fold one round of scrapes into the store (no I/O: the unit tests drive this)."""
        store = self.store
        dt = None if self._last_at is None else max(at - self._last_at, 1e-6)
        self._last_at = at
        # Only `chorus up` has a supervisor: a stack run otherwise has none to scrape.
        failed = sum(1 for name, s in scrapes.items() if s is None and name != SUPERVISOR)
        store.add("scrape_failures", at, failed)
        live = {name: scrape for name, scrape in scrapes.items() if scrape is not None}
        went_back = sum(self._restarted(name, s) for name, s in scrapes.items())
        if SUPERVISOR in live:  # it counts every restart, even one before a counter moved
            supervised = {SUPERVISOR: live[SUPERVISOR]}
            went_back = int(self._delta(supervised, "chorus_supervisor_restarts_total"))
        store.add("restarts", at, went_back)
        store.add("http_503", at, self._delta(live, "chorus_http_requests_total", status="503"))
        decided = self._delta(live, "chorus_commands_decided_total")
        if dt is not None:
            store.add("commands_per_second", at, decided / dt)
        for name, metric in (
            ("sse_clients", "chorus_live_clients"),
            ("media_rooms", "chorus_media_rooms"),
            ("media_participants", "chorus_media_participants"),
        ):
            values = [v for s in live.values() if (v := s.total(metric)) is not None]
            if values:
                store.add(name, at, sum(values))
        for name, metric in HISTOGRAMS.items():
            self._histogram(live, at, name, metric)

    def _restarted(self, service: str, scrape: Scrape | None) -> int:
        """1 when a counter of this service went back since its last scrape (it restarted)."""
        if scrape is None:
            return 0
        now = scrape.counters()
        before = self._counters.get(service, {})
        self._counters[service] = now
        return int(any(value < before[key] for key, value in now.items() if key in before))

    def _delta(self, live: dict[str, Scrape], metric: str, **match: str) -> float:
        grown = 0.0
        for service, scrape in live.items():
            value = scrape.total(metric, **match)
            if value is None:
                continue
            key = f"{service}/{metric}/{sorted(match.items())}"
            grown += counter_delta(value, self._totals.get(key))
            self._totals[key] = value
        return grown

    def _histogram(self, live: dict[str, Scrape], at: float, name: str, metric: str) -> None:
        observed: list[Buckets] = []
        for service, scrape in live.items():
            buckets = scrape.buckets(metric)
            if buckets is None:
                continue
            key = f"{service}/{metric}"
            before = self._buckets.get(key)
            self._buckets[key] = buckets
            if before is not None:
                observed.append(bucket_delta(buckets, before))
        if observed:
            merged: dict[float, float] = {}
            for buckets in observed:
                for bound, count in buckets:
                    merged[bound] = merged.get(bound, 0.0) + count
            self.store.add_buckets(name, at, tuple(sorted(merged.items())))

    async def _sample_calls(
        self, engine: AsyncEngine, at: float, exported: Exported | None
    ) -> None:
        participants = sa.func.coalesce(
            sa.func.sum(sa.func.jsonb_array_length(rm_calls.c.body["participants"])), 0
        )
        count = sa.select(sa.func.count()).select_from(rm_calls)
        async with engine.connect() as conn:
            total = int(await conn.scalar(count) or 0)
            # The read model knows when each call started: the figures over a window are exact
            # even for calls started before this service was.
            started = {
                window.name: int(
                    await conn.scalar(
                        count.where(
                            rm_calls.c.started_at
                            >= format_millis(int((at - window.seconds) * 1000))
                        )
                    )
                    or 0
                )
                for window in WINDOWS
            }
            active = (
                await conn.execute(
                    sa.select(sa.func.count(), participants).where(rm_calls.c.state == "active")
                )
            ).one()
        calls, people = int(active[0]), int(active[1])
        self.store.add("calls_started", at, counter_delta(float(total), self._calls))
        self._calls = float(total)
        for name, value in started.items():
            self.store.add(f"calls_started.{name}", at, value)
        self.store.add("calls_active", at, calls)
        self.store.add("call_participants", at, people)
        if exported is not None:
            exported.calls_active.set(calls)
            exported.participants.set(people)

    @contextlib.asynccontextmanager
    async def running(
        self, engine: AsyncEngine, registry: CollectorRegistry, interval: float = SAMPLE_SECONDS
    ) -> AsyncIterator[None]:
        """Sample in the background while the context is open (the first sample at once)."""
        exported = Exported(registry)
        # Without a Kafka cluster configured (a database-only test) there is no lag to read.
        lag = LagReader(self.settings) if self.settings.kafka_bootstrap else None

        async def loop() -> None:
            async with httpx.AsyncClient() as client:
                while True:
                    try:
                        await self.sample(client, engine, lag, exported)
                    except Exception:  # one failed round must not end the sampling
                        log.exception("metrics: a sample failed")
                    await asyncio.sleep(interval)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if lag is not None:
                await asyncio.to_thread(lag.close)


class LagReader:
    """The decider's lag per partition: the commands topic's end minus the offset its consumer
    group (the worker's id) committed. It asks the broker only; it never joins the group."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.topics.commands
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.require_kafka(),
                "group.id": settings.worker_id,
                "client.id": f"chorus-admin-lag-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "log_level": 0,
            }
        )

    def read(self) -> dict[int, float]:
        """Commands not yet decided, by partition ({} when the broker does not answer)."""
        try:
            described = self._consumer.list_topics(self._topic, timeout=2).topics[self._topic]
            asked = [TopicPartition(self._topic, p) for p in sorted(described.partitions)]
            committed = self._consumer.committed(asked, timeout=2)
            lag: dict[int, float] = {}
            for found in committed:
                low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, found.partition), timeout=2
                )
                # No commit yet (a negative offset): everything kept is still to decide.
                start = found.offset if found.offset >= 0 else low
                lag[found.partition] = float(max(0, high - start))
            return lag
        except (KafkaException, KeyError):
            return {}

    def close(self) -> None:
        self._consumer.close()
