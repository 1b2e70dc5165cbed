"""The project's own Kafka broker and the Kafka adapters, against a real broker."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2 as java_murmur2
from confluent_kafka import Consumer, KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

# Where it is typed: confluent_kafka.admin re-exports it without listing it.
from confluent_kafka.admin._config import ConfigResource

from adapters.errors import InfraError
from adapters.kafka import COMMANDS_RETENTION_MS, ensure_topics, kafka_reachable, producer_config
from devstack.broker import KafkaBroker, kafka_libs
from devstack.server import free_port
from schemas.topics import Topics


def _produce(bootstrap: str, topic: str, records: dict[bytes, bytes]) -> dict[bytes, Message]:
    """Send records (key -> value) with one producer; each key's delivery report."""
    delivered: dict[bytes, Message] = {}

    def on_delivery(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        delivered[message.key() or b""] = message

    producer = Producer(producer_config(bootstrap))
    for key, value in records.items():
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert delivered.keys() == records.keys()
    return delivered


def _consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[Message]:
    """Read `topic` from the beginning until `expected` records arrived."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append(message)
    finally:
        consumer.close()
    return found


def _partition_of(key: bytes, partitions: int) -> int:
    # Java's default partitioner: murmur2 made positive, modulo the partition count.
    return int((java_murmur2(key) & 0x7FFFFFFF) % partitions)


def test_a_produced_record_is_consumed_back_on_the_java_partition(
    kafka_bootstrap: str, topics: Topics
) -> None:
    sent = {f"team-{n}".encode(): uuid.uuid4().bytes for n in range(12)}
    reports = _produce(kafka_bootstrap, topics.events, sent)

    received = _consume_all(kafka_bootstrap, topics.events, expected=len(sent))

    assert {message.key(): message.value() for message in received} == sent
    for key, report in reports.items():
        assert report.partition() == _partition_of(key, 3), key
    assert len({report.partition() for report in reports.values()}) > 1


def test_producer_config_is_idempotent_and_latency_tuned() -> None:
    config = producer_config("b:1", **{"message.timeout.ms": 5000, "client.id": "me"})
    assert config["bootstrap.servers"] == "b:1"
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["linger.ms"] == 0
    assert config["partitioner"] == "murmur2_random"
    assert config["message.timeout.ms"] == 5000
    assert config["client.id"] == "me"


def test_ensure_topics_is_idempotent_and_configures_retention(kafka_bootstrap: str) -> None:
    names = Topics(prefix=f"t{uuid.uuid4().hex}")
    ensure_topics(kafka_bootstrap, names, 3)
    ensure_topics(kafka_bootstrap, names, 3)

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    metadata = admin.list_topics(timeout=10)
    assert len(metadata.topics[names.commands].partitions) == 3
    assert len(metadata.topics[names.events].partitions) == 3
    assert _topic_config(admin, names.events)["retention.ms"] == "-1"
    assert _topic_config(admin, names.events)["cleanup.policy"] == "delete"
    assert _topic_config(admin, names.commands)["retention.ms"] == str(COMMANDS_RETENTION_MS)
    assert len(metadata.topics[names.media_nodes].partitions) == 1
    assert _topic_config(admin, names.media_nodes)["cleanup.policy"] == "compact"


def test_ensure_topics_refuses_a_topic_with_another_partition_count(
    kafka_bootstrap: str, topics: Topics
) -> None:
    with pytest.raises(InfraError, match=r"exists with 3 partitions, but 5 are configured"):
        ensure_topics(kafka_bootstrap, topics, 5)


def test_the_broker_never_creates_topics_on_its_own(kafka_bootstrap: str) -> None:
    name = f"unknown-{uuid.uuid4().hex}"
    producer = Producer(producer_config(kafka_bootstrap, **{"message.timeout.ms": 2000}))
    errors: list[KafkaError | None] = []
    producer.produce(name, value=b"x", on_delivery=lambda error, _: errors.append(error))
    producer.flush(10)
    assert errors and errors[0] is not None
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert name not in admin.list_topics(timeout=10).topics


def test_kafka_reachable_answers_within_its_timeout(kafka_bootstrap: str) -> None:
    assert kafka_reachable(kafka_bootstrap)
    started = time.monotonic()
    assert not kafka_reachable(f"127.0.0.1:{free_port()}", timeout=1.0)
    assert time.monotonic() - started < 3
    assert not kafka_reachable("not a bootstrap address", timeout=1.0)


def test_a_restarted_broker_keeps_its_records_ports_and_cluster(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka")
    names = Topics(prefix="restart")
    try:
        bootstrap = broker.start()
        cluster_id = (tmp_path / "kafka" / "cluster.id").read_text()
        ensure_topics(bootstrap, names, 3)
        _produce(bootstrap, names.events, {b"team-1": b"kept"})
        broker.stop()
        assert not broker.running and broker.pid is None
        assert not kafka_reachable(bootstrap, timeout=0.5)

        assert broker.start() == bootstrap
        assert (tmp_path / "kafka" / "cluster.id").read_text() == cluster_id
        ensure_topics(bootstrap, names, 3)
        received = _consume_all(bootstrap, names.events, expected=1)
        assert [(m.key(), m.value()) for m in received] == [(b"team-1", b"kept")]
    finally:
        broker.stop()
    assert "Kafka Server started" in broker.log_path.read_text()


def test_a_jvm_that_exits_at_start_fails_at_once_with_its_log(tmp_path: Path) -> None:
    broker = KafkaBroker(tmp_path / "kafka", heap="1k")
    started = time.monotonic()
    with pytest.raises(InfraError, match=r"exited with status") as failure:
        broker.start()
    assert time.monotonic() - started < 20
    assert "heap" in str(failure.value).lower()
    assert broker.pid is None


def test_a_busy_port_is_reported_before_the_jvm_starts(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = int(sock.getsockname()[1])
        with pytest.raises(InfraError, match=f"127.0.0.1:{busy} is already in use"):
            KafkaBroker(tmp_path / "kafka", port=busy).start()


def test_kafka_libs_fetches_once_for_concurrent_callers(tmp_path: Path) -> None:
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(kafka_libs(tmp_path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors
    libs = tmp_path / "kafka-3.9.2" / "libs"
    assert results == [libs, libs]
    assert (libs / "kafka_2.13-3.9.2.jar").is_file()
    assert (libs / "slf4j-reload4j-1.7.36.jar").is_file()
    assert [p.name for p in libs.parent.iterdir() if p.name.startswith(".libs-")] == []


def test_kafka_libs_without_maven_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InfraError, match="apt-get install openjdk-17-jre-headless maven"):
        kafka_libs(tmp_path / "cache")


def _topic_config(admin: AdminClient, topic: str) -> dict[str, str]:
    resource = ConfigResource("topic", topic)
    described = admin.describe_configs([resource])[resource].result(timeout=10)
    return {name: entry.value for name, entry in described.items()}
