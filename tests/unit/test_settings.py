"""Settings from the environment and from a local stack's file."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import devstack.server
from adapters.kafka import producer_config
from config.settings import (
    DEFAULT_PARTITIONS,
    PRODUCER_DURABILITY,
    STACK_FILE,
    KafkaReplication,
    Settings,
    SettingsError,
    default_cache_dir,
    default_data_dir,
    read_stack_file,
    write_stack_file,
)
from devstack.broker import KafkaBroker
from devstack.database import LocalPostgres
from devstack.server import PORTS_FILE
from devstack.up import worker_instance
from schemas.topics import Topics


def test_topic_names_carry_the_prefix() -> None:
    assert Topics().commands == "chorus.commands"
    assert Topics().events == "chorus.events"
    assert Topics(prefix="t1").commands == "t1.commands"
    assert Topics(prefix="t1").events == "t1.events"
    assert Topics(prefix="t1").media_nodes == "t1.media-nodes"


def test_defaults_with_an_empty_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
    assert settings.data_dir == tmp_path
    assert settings.host == "127.0.0.1"
    assert (settings.commands_port, settings.queries_port, settings.media_port) == (
        8000,
        8001,
        8002,
    )
    assert settings.worker_port == 8003
    assert settings.kafka_bootstrap is None
    assert settings.database_url is None
    assert not settings.kafka_explicit and not settings.database_explicit
    assert settings.kafka_port is None and settings.database_port is None
    assert settings.partitions == DEFAULT_PARTITIONS
    assert settings.topics == Topics()
    assert settings.secret is None
    assert settings.token_ttl_seconds == 12 * 3600
    assert settings.presence_ttl_seconds == 30.0
    assert settings.worker_id == "chorus-worker"
    assert settings.sse_keepalive_seconds == 15.0


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_HOST": "0.0.0.0",
        "CHORUS_COMMANDS_PORT": "9000",
        "CHORUS_QUERIES_PORT": "9001",
        "CHORUS_MEDIA_PORT": "9002",
        "CHORUS_KAFKA": "k:9092",
        "CHORUS_KAFKA_PORT": "19092",
        "CHORUS_DATABASE_URL": "postgresql+psycopg://u:p@h/d",
        "CHORUS_DATABASE_PORT": "15432",
        "CHORUS_PARTITIONS": "3",
        "CHORUS_TOPIC_PREFIX": "dev",
        "CHORUS_SECRET": "s3cret",
        "CHORUS_TOKEN_TTL": "60",
        "CHORUS_PRESENCE_TTL": "2.5",
        "CHORUS_WORKER_ID": "w2",
        "CHORUS_WORKER_PORT": "9003",
        "CHORUS_SSE_KEEPALIVE": "0.5",
        "CHORUS_WORKER_INSTANCE": "host-a",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    settings = Settings.from_env(env)
    assert settings.host == "0.0.0.0"
    assert (settings.commands_port, settings.queries_port, settings.media_port) == (
        9000,
        9001,
        9002,
    )
    assert settings.require_kafka() == "k:9092"
    assert settings.kafka_port == 19092
    assert settings.require_database() == "postgresql+psycopg://u:p@h/d"
    assert settings.database_port == 15432
    assert settings.partitions == 3
    assert settings.topics == Topics(prefix="dev")
    assert settings.require_secret() == "s3cret"
    assert settings.token_ttl_seconds == 60
    assert settings.presence_ttl_seconds == 2.5
    assert settings.worker_id == "w2"
    assert settings.worker_port == 9003
    assert settings.sse_keepalive_seconds == 0.5
    assert settings.worker_instance == "host-a"
    assert Settings.from_env(settings.as_env()).worker_instance == "host-a"
    assert settings.cache_dir == tmp_path / "cache" / "chorus"
    assert settings.kafka_explicit and settings.database_explicit


def test_a_stacks_worker_instance_is_its_own_and_the_same_at_every_start(tmp_path: Path) -> None:
    here, there = tmp_path / "a", tmp_path / "b"
    assert worker_instance(here) == worker_instance(here)
    assert worker_instance(here) != worker_instance(there)
    assert worker_instance(here).startswith(socket.gethostname())


def test_the_keepalive_is_at_most_fifteen_seconds(tmp_path: Path) -> None:
    env = {"CHORUS_DATA_DIR": str(tmp_path), "CHORUS_SSE_KEEPALIVE": "60"}
    assert Settings.from_env(env).sse_keepalive_seconds == 15.0


def test_empty_values_count_as_unset(tmp_path: Path) -> None:
    env = {
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_KAFKA": "",
        "CHORUS_KAFKA_PORT": "",
        "CHORUS_PARTITIONS": "",
        "CHORUS_SECRET": "",
    }
    settings = Settings.from_env(env)
    assert settings.kafka_bootstrap is None
    assert settings.kafka_port is None
    assert settings.partitions == DEFAULT_PARTITIONS
    assert settings.secret is None


@pytest.mark.parametrize(
    "name", ["CHORUS_COMMANDS_PORT", "CHORUS_PARTITIONS", "CHORUS_KAFKA_PORT", "CHORUS_WORKER_PORT"]
)
def test_a_malformed_number_names_the_variable(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be a whole number, not 'twelve'"):
        Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), name: "twelve"})


@pytest.mark.parametrize("name", ["CHORUS_PRESENCE_TTL", "CHORUS_SSE_KEEPALIVE"])
def test_a_malformed_duration_names_the_variable(tmp_path: Path, name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name} must be a number, not 'soon'"):
        Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), name: "soon"})


def test_the_stack_file_fills_what_the_environment_leaves_unset(tmp_path: Path) -> None:
    url = "postgresql+psycopg://chorus:pw@127.0.0.1:5555/chorus"
    write_stack_file(tmp_path, {"kafka": "127.0.0.1:1234", "database_url": url})
    settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
    assert settings.kafka_bootstrap == "127.0.0.1:1234"
    assert settings.database_url == url
    assert not settings.kafka_explicit and not settings.database_explicit

    overridden = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), "CHORUS_KAFKA": "other:9"})
    assert overridden.kafka_bootstrap == "other:9"
    assert overridden.kafka_explicit
    assert overridden.database_url == url
    assert not overridden.database_explicit


def test_stack_file_round_trip_and_unreadable_files(tmp_path: Path) -> None:
    assert read_stack_file(tmp_path / "missing") == {}
    data_dir = tmp_path / "new" / "dir"
    write_stack_file(data_dir, {"kafka": "a:1", "extra": [1, 2]})
    assert read_stack_file(data_dir) == {"kafka": "a:1", "extra": [1, 2]}
    assert not (data_dir / (STACK_FILE + ".tmp")).exists()

    (data_dir / STACK_FILE).write_text("{not json")
    assert read_stack_file(data_dir) == {}
    (data_dir / STACK_FILE).write_text(json.dumps(["a", "list"]))
    assert read_stack_file(data_dir) == {}


def test_missing_requirements_say_what_to_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SettingsError, match="CHORUS_KAFKA=host:port"):
        settings.require_kafka()
    with pytest.raises(SettingsError, match=f"CHORUS_DATA_DIR={tmp_path}"):
        settings.require_database()
    with pytest.raises(SettingsError, match="CHORUS_SECRET"):
        settings.require_secret()


def test_with_changes_a_copy_only() -> None:
    settings = Settings(data_dir=Path("/x"))
    changed = settings.with_(host="0.0.0.0", partitions=6)
    assert (changed.host, changed.partitions) == ("0.0.0.0", 6)
    assert (settings.host, settings.partitions) == ("127.0.0.1", DEFAULT_PARTITIONS)
    with pytest.raises(TypeError):
        settings.with_(no_such_field=1)


def test_a_child_reads_the_same_settings_and_inherits_the_rest(tmp_path: Path) -> None:
    env = {
        "PATH": "/opt/bin",
        "OTHER_TOOL": "kept",
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_KAFKA": "k:9092",
        "CHORUS_SSE_KEEPALIVE": "0.25",
        "CHORUS_PRESENCE_TTL": "2.5",
        "CHORUS_TOKEN_TTL": "60",
        "CHORUS_TOPIC_PREFIX": "dev",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    parent = Settings.from_env(env).with_(
        database_url="postgresql+psycopg://u:p@h/d", secret="s3cret", worker_port=9003
    )
    child_env = parent.child_environment()
    assert child_env["PATH"] == "/opt/bin" and child_env["OTHER_TOOL"] == "kept"
    child = Settings.from_env(child_env)
    assert child == parent.with_(database_explicit=True)
    assert child.cache_dir == tmp_path / "cache" / "chorus"


def test_settings_not_read_from_an_environment_pass_only_themselves_on() -> None:
    env = Settings(data_dir=Path("/x")).child_environment()
    assert "CHORUS_KAFKA" not in env and "CHORUS_SECRET" not in env
    assert env["CHORUS_DATA_DIR"] == "/x"
    assert all(name.startswith("CHORUS_") for name in env)


def test_the_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "chorus"
    assert Settings.from_env({}).data_dir == tmp_path / "chorus"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "chorus"


def test_the_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "chorus"
    assert Settings.from_env({}).cache_dir == tmp_path / "chorus"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "chorus"


def test_media_node_settings(tmp_path: Path) -> None:
    defaults = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
    assert (defaults.media_region, defaults.media_capacity) == ("local", 200)
    assert defaults.media_base_url() == "http://127.0.0.1:8002"
    # Without a configured id, two nodes on one host differ by port and keep theirs on restart.
    assert defaults.media_node() == defaults.with_().media_node()
    assert defaults.media_node() != defaults.with_(media_port=8102).media_node()
    env = {
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_MEDIA_NODE_ID": "node-a",
        "CHORUS_MEDIA_REGION": "eu",
        "CHORUS_MEDIA_CAPACITY": "50",
        "CHORUS_MEDIA_PUBLIC_URL": "https://media-a.example.com/",
    }
    settings = Settings.from_env(env)
    assert settings.media_node() == "node-a"
    assert (settings.media_region, settings.media_capacity) == ("eu", 50)
    assert settings.media_base_url() == "https://media-a.example.com"


def test_kafka_replication_is_one_copy_unless_set(tmp_path: Path) -> None:
    assert Settings.from_env({}).kafka_replication == KafkaReplication(factor=1, min_insync=1)
    env = {
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_KAFKA_REPLICATION_FACTOR": "3",
        "CHORUS_KAFKA_MIN_INSYNC_REPLICAS": "2",
    }
    settings = Settings.from_env(env)
    assert settings.kafka_replication == KafkaReplication(factor=3, min_insync=2)
    assert settings.kafka_replication.problem() is None
    assert Settings.from_env(settings.child_environment()) == settings


@pytest.mark.parametrize(("factor", "min_insync"), [(1, 2), (0, 1), (3, 0)])
def test_replication_that_would_refuse_every_write_says_why(factor: int, min_insync: int) -> None:
    problem = KafkaReplication(factor=factor, min_insync=min_insync).problem()
    assert problem is not None and ("exceeds" in problem or "at least 1" in problem)


def test_producers_wait_for_every_in_sync_copy_and_never_duplicate() -> None:
    config = producer_config("b:1")
    assert config["acks"] == PRODUCER_DURABILITY["acks"] == "all"
    assert config["enable.idempotence"] is PRODUCER_DURABILITY["enable.idempotence"] is True


def test_a_local_broker_or_database_never_takes_a_port_promised_to_a_service(
    tmp_path: Path,
) -> None:
    # A test's stack names its services' ports; its broker and database pick theirs after. A
    # remembered port now promised to a service is given up, and a new pick avoids them all.
    settings = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path), "CHORUS_ADMIN_PORT": "40123"})
    assert 40123 in settings.service_ports
    assert settings.commands_port in settings.service_ports
    assert settings.supervisor_port in settings.service_ports
    database = LocalPostgres(tmp_path / "postgres", reserved=settings.service_ports)
    database.data_dir.mkdir(parents=True)
    (database.data_dir / PORTS_FILE).write_text(json.dumps({"port": 40123}))
    port = database.choose_ports({"port": None})["port"]
    assert port != 40123
    assert port not in settings.service_ports
    assert json.loads((database.data_dir / PORTS_FILE).read_text()) == {"port": port}


def test_a_new_port_is_picked_avoiding_every_reserved_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[set[int]] = []

    def pick(avoid: set[int]) -> int:
        asked.append(set(avoid))
        return 50000 + len(asked)

    monkeypatch.setattr(devstack.server, "free_port", pick)
    broker = KafkaBroker(tmp_path / "kafka", reserved={41001, 41002})
    broker.data_dir.mkdir(parents=True)
    ports = broker.choose_ports({"port": None, "controller_port": None})
    assert ports == {"port": 50001, "controller_port": 50002}
    assert asked == [{41001, 41002}, {41001, 41002, 50001}]


def test_the_worker_fetch_settings_are_read_and_written_back(tmp_path: Path) -> None:
    defaults = Settings.from_env({"CHORUS_DATA_DIR": str(tmp_path)})
    assert (defaults.worker_fetch_max_wait_ms, defaults.worker_fetch_min_bytes) == (20, 1)
    env = {
        "CHORUS_DATA_DIR": str(tmp_path),
        "CHORUS_WORKER_FETCH_MAX_WAIT_MS": "10",
        "CHORUS_WORKER_FETCH_MIN_BYTES": "4096",
    }
    again = Settings.from_env(Settings.from_env(env).as_env())
    assert (again.worker_fetch_max_wait_ms, again.worker_fetch_min_bytes) == (10, 4096)
    for name in ("CHORUS_WORKER_FETCH_MAX_WAIT_MS", "CHORUS_WORKER_FETCH_MIN_BYTES"):
        with pytest.raises(SettingsError, match=f"{name} must be at least 1, not 0"):
            Settings.from_env({**env, name: "0"})
