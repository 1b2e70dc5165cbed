"""Settings, read once from the environment (and the data directory of a local stack)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from schemas.topics import Topics

DEFAULT_PARTITIONS = 12
STACK_FILE = "stack.json"
#: Where each process listens unless CHORUS_<NAME>_PORT says otherwise.
DEFAULT_PORTS = {
    "commands": 8000,
    "queries": 8001,
    "media": 8002,
    "worker": 8003,
    "web": 8004,
    "admin": 8005,
    "supervisor": 8006,  # `chorus up` itself: its /metrics (restarts of its children)
}
#: Proxies close a quiet connection after about 30 s; a live stream speaks at least this often.
MAX_SSE_KEEPALIVE_SECONDS = 15.0
MEDIA_NODE_NAMESPACE = uuid.UUID("0d8f5a8e-3c1b-4f57-9d0e-6a2b7c4e1f90")
#: Every producer's durability, not a deployment's choice: a 202 promises the command is in the
#: log (contract: acks=all), and a retried send must neither duplicate nor reorder. With
#: `KafkaReplication` below, acks=all waits for min.insync.replicas copies.
PRODUCER_DURABILITY: Mapping[str, str | bool] = {"acks": "all", "enable.idempotence": True}


def default_data_dir() -> Path:
    """A per-user data directory (XDG), used when CHORUS_DATA_DIR is not set."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chorus"


def default_cache_dir() -> Path:
    """The per-user cache of Chorus (XDG), where the broker's jars are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "chorus"


@dataclass(frozen=True)
class KafkaReplication:
    """Copies of each topic `chorus init` creates, and how many must have a record before the
    broker acknowledges it (acks=all). One and one suit a single-broker dev stack; a real
    cluster wants 3 and 2, so that one broker can be lost without losing or refusing a write.
    """

    factor: int = 1
    min_insync: int = 1

    def problem(self) -> str | None:
        """Why these numbers cannot work, or None."""
        if self.factor < 1 or self.min_insync < 1:
            return "the replication factor and min.insync.replicas must be at least 1"
        if self.min_insync > self.factor:
            return (
                f"min.insync.replicas={self.min_insync} exceeds the replication factor "
                f"{self.factor}: every write would be refused"
            )
        return None


@dataclass(frozen=True)
class Settings:
    """Everything a Chorus process needs to know about its surroundings."""

    data_dir: Path = field(default_factory=default_data_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)
    host: str = "127.0.0.1"
    commands_port: int = DEFAULT_PORTS["commands"]
    queries_port: int = DEFAULT_PORTS["queries"]
    media_port: int = DEFAULT_PORTS["media"]
    worker_port: int = DEFAULT_PORTS["worker"]
    web_port: int = DEFAULT_PORTS["web"]  # the browser client's page and its same-origin entry
    admin_port: int = DEFAULT_PORTS["admin"]
    supervisor_port: int = DEFAULT_PORTS["supervisor"]
    # The operators' service listens on loopback unless told otherwise, whatever CHORUS_HOST says.
    admin_host: str = "127.0.0.1"
    kafka_bootstrap: str | None = None
    # True when CHORUS_KAFKA named the cluster, False when a stack file did (or nothing did):
    # `chorus up` starts its own broker unless told otherwise, whatever an old stack file says.
    kafka_explicit: bool = False
    kafka_port: int | None = None
    database_url: str | None = None
    database_explicit: bool = False  # CHORUS_DATABASE_URL, as kafka_explicit
    database_port: int | None = None
    partitions: int = DEFAULT_PARTITIONS
    kafka_replication: KafkaReplication = field(default_factory=KafkaReplication)
    topics: Topics = field(default_factory=Topics)
    secret: str | None = None
    token_ttl_seconds: int = 12 * 3600
    presence_ttl_seconds: float = 30.0
    worker_id: str = "chorus-worker"
    faults: str = ""  # fault points to turn on, e.g. "decider.after_events_acked=crash@5"
    sse_keepalive_seconds: float = MAX_SSE_KEEPALIVE_SECONDS
    # The whole environment these settings were read from: child processes inherit it.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    media_node_id: str | None = None  # None: follows from host and port (`media_node`)
    media_region: str = "local"
    media_capacity: int = 200  # participants one media node mixes at most
    media_public_url: str | None = None  # None: http://127.0.0.1:<media_port>
    # Media processes per node (one aiortc process uses about a core): one per core by default.
    media_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # A partition's decider snapshot is written after this many decided commands (or 30 s).
    snapshot_every_commands: int = 1000
    # How long the group waits for a silent worker before it hands its partitions over. Brokers
    # refuse one below their group.min.session.timeout.ms (6 s by default; 1 s on the brokers
    # devstack starts): shorter means a faster takeover after a crash, and a rebalance whenever
    # a worker stalls that long.
    worker_session_timeout: float = 10.0
    # The longest a worker's fetch waits at the broker for records (ms). The consumer has one
    # fetch in flight and leaves out the partitions whose records it still holds, so a fetch
    # for quiet partitions held back the busy ones this long (Faust's 1,500 ms).
    worker_fetch_max_wait_ms: int = 20
    # A worker's fetch is answered once this many bytes are there (or at its max wait): 1 answers
    # at the first record; more makes fewer, larger fetches (less CPU in the worker and the
    # broker under load) and holds a lone command up to the max wait.
    worker_fetch_min_bytes: int = 1
    # The worker's static member id in its group (Kafka's group.instance.id), or None to join as
    # a new member each start. A worker restarted with the same id takes its partitions back at
    # once, without the group waiting out the dead one's session; two live workers must never
    # share one (the newer fences the older out).
    worker_instance: str | None = None
    # Commands one commands process has appended and not yet heard decided, at most: past it
    # the process answers 503 `overloaded` instead of accepting work the workers cannot keep up
    # with (`commands.backlog`). The default is half a second of one worker's decisions on two
    # cores (about 2,000 a second): a command accepted at the limit is decided within a second.
    commands_backlog: int = 1000

    @property
    def service_ports(self) -> frozenset[int]:
        """The ports of the services and of `chorus up`'s /metrics: not for a broker or database."""
        return frozenset(
            (
                self.commands_port,
                self.queries_port,
                self.media_port,
                self.worker_port,
                self.web_port,
                self.admin_port,
                self.supervisor_port,
            )
        )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from the environment; a local stack's file fills what is unset."""
        e = dict(os.environ if env is None else env)
        data_dir = Path(e["CHORUS_DATA_DIR"]) if e.get("CHORUS_DATA_DIR") else _data_dir(e)
        stack = read_stack_file(data_dir)
        return cls(
            data_dir=data_dir,
            cache_dir=_cache_dir(e),
            host=e.get("CHORUS_HOST", "127.0.0.1"),
            commands_port=_int(e, "CHORUS_COMMANDS_PORT", DEFAULT_PORTS["commands"]),
            queries_port=_int(e, "CHORUS_QUERIES_PORT", DEFAULT_PORTS["queries"]),
            media_port=_int(e, "CHORUS_MEDIA_PORT", DEFAULT_PORTS["media"]),
            worker_port=_int(e, "CHORUS_WORKER_PORT", DEFAULT_PORTS["worker"]),
            web_port=_int(e, "CHORUS_WEB_PORT", DEFAULT_PORTS["web"]),
            admin_port=_int(e, "CHORUS_ADMIN_PORT", DEFAULT_PORTS["admin"]),
            supervisor_port=_int(e, "CHORUS_SUPERVISOR_PORT", DEFAULT_PORTS["supervisor"]),
            admin_host=e.get("CHORUS_ADMIN_HOST") or "127.0.0.1",
            kafka_bootstrap=e.get("CHORUS_KAFKA") or stack.get("kafka"),
            kafka_explicit=bool(e.get("CHORUS_KAFKA")),
            kafka_port=_opt_int(e, "CHORUS_KAFKA_PORT"),
            database_url=e.get("CHORUS_DATABASE_URL") or stack.get("database_url"),
            database_explicit=bool(e.get("CHORUS_DATABASE_URL")),
            database_port=_opt_int(e, "CHORUS_DATABASE_PORT"),
            partitions=_int(e, "CHORUS_PARTITIONS", DEFAULT_PARTITIONS),
            kafka_replication=KafkaReplication(
                factor=_int(e, "CHORUS_KAFKA_REPLICATION_FACTOR", 1),
                min_insync=_int(e, "CHORUS_KAFKA_MIN_INSYNC_REPLICAS", 1),
            ),
            topics=Topics(prefix=e.get("CHORUS_TOPIC_PREFIX", "chorus")),
            secret=e.get("CHORUS_SECRET") or None,
            token_ttl_seconds=_int(e, "CHORUS_TOKEN_TTL", 12 * 3600),
            presence_ttl_seconds=_float(e, "CHORUS_PRESENCE_TTL", 30.0),
            worker_id=e.get("CHORUS_WORKER_ID", "chorus-worker"),
            faults=e.get("CHORUS_FAULTS", ""),
            sse_keepalive_seconds=min(
                MAX_SSE_KEEPALIVE_SECONDS,
                _float(e, "CHORUS_SSE_KEEPALIVE", MAX_SSE_KEEPALIVE_SECONDS),
            ),
            environment=e,
            media_node_id=e.get("CHORUS_MEDIA_NODE_ID") or None,
            media_region=e.get("CHORUS_MEDIA_REGION") or "local",
            media_capacity=_int(e, "CHORUS_MEDIA_CAPACITY", 200),
            media_public_url=e.get("CHORUS_MEDIA_PUBLIC_URL") or None,
            media_workers=_int(e, "CHORUS_MEDIA_WORKERS", os.cpu_count() or 1),
            snapshot_every_commands=_int(e, "CHORUS_SNAPSHOT_EVERY", 1000),
            worker_session_timeout=_float(e, "CHORUS_WORKER_SESSION_TIMEOUT", 10.0),
            # 0 would be a fetch loop that never waits: a core spent asking.
            worker_fetch_max_wait_ms=_at_least(e, "CHORUS_WORKER_FETCH_MAX_WAIT_MS", 20, 1),
            worker_fetch_min_bytes=_at_least(e, "CHORUS_WORKER_FETCH_MIN_BYTES", 1, 1),
            worker_instance=e.get("CHORUS_WORKER_INSTANCE") or None,
            commands_backlog=_at_least(e, "CHORUS_COMMANDS_BACKLOG", 1000, 1),
        )

    def child_environment(self) -> dict[str, str]:
        """The environment of a child process that should see these settings.

        It inherits what these settings were read from (PATH, HOME, variables of other tools)
        with every setting written over it, so `from_env` in the child reads the same values.
        """
        return {**self.environment, **self.as_env()}

    def as_env(self) -> dict[str, str]:
        """The CHORUS_* variables that `from_env` reads back as these settings."""
        env = {
            "CHORUS_DATA_DIR": str(self.data_dir),
            "CHORUS_HOST": self.host,
            "CHORUS_COMMANDS_PORT": str(self.commands_port),
            "CHORUS_QUERIES_PORT": str(self.queries_port),
            "CHORUS_MEDIA_PORT": str(self.media_port),
            "CHORUS_WORKER_PORT": str(self.worker_port),
            "CHORUS_WEB_PORT": str(self.web_port),
            "CHORUS_ADMIN_PORT": str(self.admin_port),
            "CHORUS_SUPERVISOR_PORT": str(self.supervisor_port),
            "CHORUS_ADMIN_HOST": self.admin_host,
            "CHORUS_KAFKA": self.kafka_bootstrap,
            "CHORUS_KAFKA_PORT": _text(self.kafka_port),
            "CHORUS_DATABASE_URL": self.database_url,
            "CHORUS_DATABASE_PORT": _text(self.database_port),
            "CHORUS_PARTITIONS": str(self.partitions),
            "CHORUS_KAFKA_REPLICATION_FACTOR": str(self.kafka_replication.factor),
            "CHORUS_KAFKA_MIN_INSYNC_REPLICAS": str(self.kafka_replication.min_insync),
            "CHORUS_TOPIC_PREFIX": self.topics.prefix,
            "CHORUS_SECRET": self.secret,
            "CHORUS_TOKEN_TTL": str(self.token_ttl_seconds),
            "CHORUS_PRESENCE_TTL": repr(self.presence_ttl_seconds),
            "CHORUS_WORKER_ID": self.worker_id,
            "CHORUS_SSE_KEEPALIVE": repr(self.sse_keepalive_seconds),
            "CHORUS_FAULTS": self.faults,
            "CHORUS_MEDIA_NODE_ID": self.media_node_id,
            "CHORUS_MEDIA_REGION": self.media_region,
            "CHORUS_MEDIA_CAPACITY": str(self.media_capacity),
            "CHORUS_MEDIA_PUBLIC_URL": self.media_public_url,
            "CHORUS_MEDIA_WORKERS": str(self.media_workers),
            "CHORUS_SNAPSHOT_EVERY": str(self.snapshot_every_commands),
            "CHORUS_WORKER_SESSION_TIMEOUT": repr(self.worker_session_timeout),
            "CHORUS_WORKER_FETCH_MAX_WAIT_MS": str(self.worker_fetch_max_wait_ms),
            "CHORUS_WORKER_FETCH_MIN_BYTES": str(self.worker_fetch_min_bytes),
            "CHORUS_WORKER_INSTANCE": self.worker_instance,
            "CHORUS_COMMANDS_BACKLOG": str(self.commands_backlog),
        }
        return {name: value for name, value in env.items() if value is not None}

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def media_node(self) -> str:
        """This media node's id: CHORUS_MEDIA_NODE_ID, else stable for its host and port."""
        if self.media_node_id:
            return self.media_node_id
        return str(uuid.uuid5(MEDIA_NODE_NAMESPACE, f"{self.host}:{self.media_port}"))

    def media_base_url(self) -> str:
        """Where clients reach this media node (offer URLs start with it)."""
        url = self.media_public_url or f"http://127.0.0.1:{self.media_port}"
        return url.rstrip("/")

    def require_kafka(self) -> str:
        if not self.kafka_bootstrap:
            raise SettingsError(
                "no Kafka cluster: set CHORUS_KAFKA=host:port or run `chorus up` "
                f"with CHORUS_DATA_DIR={self.data_dir}"
            )
        return self.kafka_bootstrap

    def require_database(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "no database: set CHORUS_DATABASE_URL or run `chorus up` "
                f"with CHORUS_DATA_DIR={self.data_dir}"
            )
        return self.database_url

    def require_secret(self) -> str:
        if not self.secret:
            raise SettingsError("no token secret: set CHORUS_SECRET (chorus up makes one)")
        return self.secret


class SettingsError(RuntimeError):
    """A setting that a process needs is missing or malformed."""


def inherited_environment() -> dict[str, str]:
    """This process's environment, for a child that should inherit it (PATH, HOME, ...)."""
    return dict(os.environ)


def read_stack_file(data_dir: Path) -> dict[str, Any]:
    """What a running `chorus up` wrote about its broker and database, or {}."""
    return read_json(data_dir / STACK_FILE)


def write_stack_file(data_dir: Path, content: dict[str, Any]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    write_json(data_dir / STACK_FILE, content)


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object a state file holds, or {} if it is missing or unreadable."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Replace a state file at once (write beside it, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    tmp.replace(path)


def _data_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_DATA_HOME")
    return Path(base) / "chorus" if base else default_data_dir()


def _cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME")
    return Path(base) / "chorus" if base else default_cache_dir()


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from exc


def _int(env: dict[str, str], name: str, default: int) -> int:
    value = _opt_int(env, name)
    return default if value is None else value


def _at_least(env: dict[str, str], name: str, default: int, least: int) -> int:
    value = _int(env, name, default)
    if value < least:
        raise SettingsError(f"{name} must be at least {least}, not {value}")
    return value


def _opt_int(env: dict[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from exc
