"""Shared fixtures: one real Kafka broker and one PostgreSQL per session, started on first use.

`CHORUS_KAFKA` / `CHORUS_DATABASE_URL` point the session at existing servers instead. A run of
unit tests alone requests neither fixture, so it starts nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from adapters.kafka import ensure_topics
from config.settings import Settings
from devstack.broker import KafkaBroker
from devstack.database import LocalPostgres, create_database, drop_database
from schemas.topics import Topics

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "integration", "e2e")
TEST_PARTITIONS = 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by its folder, so `-m unit` and friends need no decorator anywhere."""
    for item in items:
        with contextlib.suppress(ValueError):
            kind = item.path.resolve().relative_to(TESTS).parts[0]
            if kind in KINDS:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's broker (CHORUS_KAFKA, or one started here)."""
    # Only a server named explicitly: a `chorus up` stack file is not the tests' to use.
    settings = Settings.from_env()
    if settings.kafka_explicit and settings.kafka_bootstrap:
        yield settings.kafka_bootstrap
        return
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"))
    try:
        yield broker.start()
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of the session's `chorus` database (CHORUS_DATABASE_URL, or a cluster started here)."""
    settings = Settings.from_env()
    if settings.database_explicit and settings.database_url:
        yield settings.database_url
        return
    # Not under pytest's basetemp: run as root the server is the `postgres` user, which must be
    # able to traverse to the cluster, and pytest closes its folders again (0700) at each start.
    data_dir = Path(tempfile.mkdtemp(prefix="chorus-test-postgres-"))
    database = LocalPostgres(data_dir)
    try:
        yield database.start()
    finally:
        database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def topics(kafka_bootstrap: str) -> Iterator[Topics]:
    """Commands, events and media-nodes topics of this test alone, deleted afterwards."""
    fresh = Topics(prefix=f"t{uuid.uuid4().hex}")
    ensure_topics(kafka_bootstrap, fresh, TEST_PARTITIONS)
    yield fresh
    _delete_topics(
        kafka_bootstrap,
        [
            fresh.commands,
            fresh.events,
            fresh.decider_snapshots,
            fresh.media_nodes,
            fresh.audit,
            fresh.revocations,
        ],
    )


@pytest.fixture
def fresh_database_url(database_url: str) -> Iterator[str]:
    """URL of an empty database of this test alone, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = create_database(database_url, name)
    yield url
    drop_database(database_url, name)


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    # Best effort: a test may have stopped the broker; leftovers only cost disk in a tmp dir.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for future in admin.delete_topics(names, operation_timeout=10, request_timeout=10).values():
        future.exception()
