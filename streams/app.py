"""The Faust worker app: deciders and projections run here; it serves health and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import faust
from faust.tables.manager import TableManager
from faust.transport.drivers import aiokafka as faust_kafka
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text

from adapters.collector import SETTLE_SECONDS, Settler, watch_collections
from adapters.kafka import kafka_reachable
from config.faults import Faults
from config.settings import Settings
from db.engines import make_engine
from streams.commits import StrictCommits
from streams.decider import Decider, install_decider
from streams.event_log import KafkaEventLog
from streams.outcomes import PostgresOutcomeRecorder
from streams.projector import install_projector
from streams.snapshot_store import KafkaSnapshotStore
from web.health import run_checks


def create_worker_app(settings: Settings) -> faust.App:
    """Build the Faust app; it connects only when a worker starts it."""
    bootstrap = settings.require_kafka()
    app = _faust_app(settings, bootstrap)
    registry = CollectorRegistry()
    engine = make_engine(settings.database_url) if settings.database_url else None
    add_pages(app, bootstrap, engine, registry)
    watch_collections(registry)
    settle = Settler()

    @app.timer(interval=SETTLE_SECONDS)  # type: ignore[untyped-decorator]
    async def settle_heap() -> None:
        settle()

    install_decider(
        app,
        _decider(settings, bootstrap, engine),
        commands_topic=settings.topics.commands,
        partitions=settings.partitions,
        registry=registry,
    )
    if engine is not None:
        install_projector(
            app,
            events_topic=settings.topics.events,
            partitions=settings.partitions,
            engine=engine,
            registry=registry,
        )
    return app


class FetchingConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its fetches bounded in wait and sized as the transport says.

    The consumer has one fetch in flight per broker and leaves out the partitions whose records
    it still holds: a fetch for quiet partitions (the events topic while only heartbeats come)
    holds back the busy ones until it is answered, after Faust's 1,500 ms when nothing comes."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads these when it starts its fetcher, later (Faust does not pass them on).
        consumer._fetch_max_wait_ms = transport.fetch_max_wait_ms
        consumer._fetch_min_bytes = transport.fetch_min_bytes
        return consumer


class _Consumer(StrictCommits, faust_kafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return FetchingConsumerThread(self, loop=self.loop, beacon=self.beacon)


class WorkerTransport(faust_kafka.Transport):
    """Faust's Kafka transport with `FetchingConsumerThread` and its two fetch settings."""

    Consumer = _Consumer
    fetch_max_wait_ms: int  # set from Settings as the app is made (`_faust_app`)
    fetch_min_bytes: int


class NoTables(TableManager):
    """Faust's table manager without its start-up pause: Faust sleeps 1 s there so that tables
    defined late are registered before the consumer subscribes; this app defines none (its
    state is the deciders' own, snapshotted to Kafka), and every start and takeover paid it."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def _faust_app(settings: Settings, bootstrap: str) -> faust.App:
    # Faust keeps a folder per app (by default `<id>-data` in the working directory); it must exist.
    datadir = settings.data_dir / "faust" / settings.worker_id
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=False,
        web_host=settings.host,
        web_port=settings.worker_port,
        # The command-to-screen path is latency-bound: do not wait for batches to fill.
        broker_commit_interval=0.2,
        # A worker that dies hands its partitions over within seconds, not a minute.
        broker_session_timeout=settings.worker_session_timeout,
        broker_heartbeat_interval=min(2.0, settings.worker_session_timeout / 3),
        # A static member (None: a dynamic one): restarted, it gets its partitions back at once.
        consumer_group_instance_id=settings.worker_instance,
        stream_wait_empty=False,
        TableManager=NoTables,
    )
    transport = WorkerTransport(app.conf.broker_consumer, app)
    transport.fetch_max_wait_ms = settings.worker_fetch_max_wait_ms
    transport.fetch_min_bytes = settings.worker_fetch_min_bytes
    app.transport = transport
    return app


def _decider(settings: Settings, bootstrap: str, engine: Engine | None) -> Decider:
    faults = Faults.parse(settings.faults)
    return Decider(
        KafkaEventLog(bootstrap, settings.topics.events),
        None if engine is None else PostgresOutcomeRecorder(engine, faults),
        presence_ttl=settings.presence_ttl_seconds,
        faults=faults,
        snapshots=KafkaSnapshotStore(bootstrap, settings.topics.decider_snapshots),
        snapshot_every=settings.snapshot_every_commands,
    )


def add_pages(
    app: faust.App, bootstrap: str, engine: Engine | None, registry: CollectorRegistry
) -> None:
    """The worker's /healthz, /readyz (Kafka and the database reachable) and /metrics."""

    def database_ok() -> bool:
        if engine is None:
            return True
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    async def kafka_check() -> bool:
        return await asyncio.to_thread(kafka_reachable, bootstrap, 2.0)

    async def database_check() -> bool:
        return await asyncio.to_thread(database_ok)

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "service": "worker"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        results = await run_checks({"kafka": kafka_check, "database": database_check})
        ready = all(results.values())
        body = {"status": "ready" if ready else "unavailable", "checks": results}
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        # aiohttp takes the charset apart from the media type.
        media_type = CONTENT_TYPE_LATEST.split("; charset")[0]
        return web.bytes(generate_latest(registry), content_type=media_type)


def run_worker(settings: Settings) -> None:
    """Run a worker until SIGINT or SIGTERM."""
    app = create_worker_app(settings)
    worker = faust.Worker(app, loglevel="INFO", quiet=True)
    worker.execute_from_commandline()
