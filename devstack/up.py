"""`chorus up`: the whole stack on one machine, kept running, stopped cleanly by Ctrl-C or SIGTERM.

A service, or the broker or database it started, that dies is restarted (devstack/supervisor.py);
one that keeps dying stops the stack with the end of its log.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from prometheus_client import CollectorRegistry, start_http_server

from adapters.kafka import ensure_topics
from config.settings import Settings, write_stack_file
from db.engines import migrate
from devstack.broker import KafkaBroker
from devstack.database import LocalPostgres
from devstack.processes import Child, chorus_argv, wait_healthy
from devstack.supervisor import BrokerUnit, DatabaseUnit, ServiceUnit, Supervisor, Unit

HEALTH_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    host: str


def load_or_create_secret(data_dir: Path) -> str:
    """The development token secret, made once and kept (0600) in the data directory."""
    path = data_dir / "secret"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    # A second Ctrl-C must not interrupt the orderly shutdown the first one started.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise StopRequested(signal.Signals(signum).name)


def run_up(settings: Settings) -> int:
    """Start Kafka, PostgreSQL, topics, migrations, the worker, the three services, the page
    and the admin service."""
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ExitStack() as stack:
            return _run(settings, stack)
    except StopRequested:
        print("chorus: stopped", flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(settings: Settings, stack: ExitStack) -> int:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = settings.secret or load_or_create_secret(data_dir)
    servers = _servers(settings, stack)
    write_stack_file(data_dir, {"kafka": servers.bootstrap, "database_url": servers.database_url})
    os.chmod(data_dir / "stack.json", 0o600)
    stack.callback(lambda: (data_dir / "stack.json").unlink(missing_ok=True))

    ensure_topics(servers.bootstrap, settings.topics, settings.partitions)
    migrate(servers.database_url)
    print(f"chorus: topics and database ready ({settings.partitions} partitions)", flush=True)

    env = settings.with_(
        kafka_bootstrap=servers.bootstrap,
        database_url=servers.database_url,
        secret=secret,
        worker_instance=settings.worker_instance or worker_instance(data_dir),
    ).child_environment()
    children = _start_children(settings, env, stack)
    if not _all_healthy(children):
        return 1
    registry = CollectorRegistry()
    units = [*servers.units, *(ServiceUnit(child) for child in children)]
    supervisor = Supervisor(units, registry=registry)
    _serve_metrics(settings, registry, stack)
    print("chorus: ready", flush=True)
    return supervisor.run()


def worker_instance(data_dir: Path) -> str:
    """The worker's static member id: this machine's and stack's, the same at every restart (so
    a restarted worker takes its partitions back at once), another on every other stack."""
    stack = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]
    return f"{socket.gethostname()}-{stack}"


def _serve_metrics(settings: Settings, registry: CollectorRegistry, stack: ExitStack) -> None:
    """`chorus up`'s own /metrics: how often each child died and was restarted."""
    server, _thread = start_http_server(
        settings.supervisor_port, addr=settings.host, registry=registry
    )
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    print(f"supervisor: http://{settings.host}:{settings.supervisor_port}/metrics", flush=True)


@dataclass
class Servers:
    """The broker and database the stack uses, and those of them `chorus up` started."""

    bootstrap: str
    database_url: str
    units: list[Unit]


def _servers(settings: Settings, stack: ExitStack) -> Servers:
    """The explicitly named servers, or local ones started here (which are then supervised).

    A stack file left by an earlier run names servers that are gone: only explicit ones count.
    """
    units: list[Unit] = []
    bootstrap = settings.kafka_bootstrap if settings.kafka_explicit else None
    if not bootstrap:
        broker = _start_kafka(settings, stack)
        bootstrap = broker.bootstrap
        units.append(BrokerUnit(broker, bootstrap))
    database_url = settings.database_url if settings.database_explicit else None
    if not database_url:
        database = _start_postgres(settings, stack)
        database_url = database.url
        units.append(DatabaseUnit(database, database_url))
    return Servers(bootstrap, database_url, units)


def _start_children(settings: Settings, env: dict[str, str], stack: ExitStack) -> list[Child]:
    host = settings.host
    specs = [
        ServiceSpec("worker", settings.worker_port, host),
        ServiceSpec("commands", settings.commands_port, host),
        ServiceSpec("queries", settings.queries_port, host),
        ServiceSpec("media", settings.media_port, host),
        ServiceSpec("web", settings.web_port, host),
        # The operators' service stays on its own host (loopback unless CHORUS_ADMIN_HOST says).
        ServiceSpec("admin", settings.admin_port, settings.admin_host),
    ]
    children = [_child(spec, settings, env) for spec in specs]
    for child in children:
        child.start()
        stack.callback(child.stop)
    return children


def _all_healthy(children: list[Child]) -> bool:
    def announce(child: Child) -> None:
        print(f"{child.name}: {child.health_url.removesuffix('/healthz')}", flush=True)

    failed = wait_healthy(children, HEALTH_TIMEOUT_SECONDS, on_ready=announce)
    if failed:
        child = failed[0]
        print(f"chorus: {child.name} did not start; the end of {child.log_path}:", flush=True)
        print(child.log_tail(), flush=True)
    return not failed


def _child(spec: ServiceSpec, settings: Settings, env: dict[str, str]) -> Child:
    args = ["--host", spec.host, "--port", str(spec.port)]
    return Child(
        name=spec.name,
        argv=chorus_argv(spec.name, *args),
        env=env,
        log_path=settings.data_dir / "logs" / f"{spec.name}.log",
        health_url=f"http://{spec.host}:{spec.port}/healthz",
    )


def _start_kafka(settings: Settings, stack: ExitStack) -> KafkaBroker:
    broker = KafkaBroker(
        settings.data_dir / "kafka", port=settings.kafka_port, reserved=settings.service_ports
    )
    print("chorus: starting Kafka (the first start fetches its jars once)", flush=True)
    started = time.monotonic()
    stack.callback(broker.stop)
    bootstrap = broker.start()
    print(f"kafka: {bootstrap} ({time.monotonic() - started:.1f} s)", flush=True)
    return broker


def _start_postgres(settings: Settings, stack: ExitStack) -> LocalPostgres:
    database = LocalPostgres(
        settings.data_dir / "postgres", port=settings.database_port, reserved=settings.service_ports
    )
    stack.callback(database.stop)
    database.start()
    print(f"postgres: 127.0.0.1:{database.port}", flush=True)
    return database
