"""Kafka adapters: client configuration, topic creation and a reachability probe.

Nothing connects at import time; every function opens and closes its own client.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # typed here; .admin re-exports it implicitly

from adapters.errors import InfraError
from config.settings import PRODUCER_DURABILITY, KafkaReplication
from schemas.topics import Topics

COMMANDS_RETENTION_MS = 7 * 24 * 3600 * 1000
MEDIA_NODES_CONFIG = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)}
# A busy team's state (its last 10,000 command ids) is a few hundred kB.
SNAPSHOTS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": str(3600 * 1000),
    "max.message.bytes": str(8 * 1024 * 1024),
}
# Events are the system of record: kept forever, never compacted away, and stored compressed
# (the broker writes zstd whatever codec a producer used; bench/compression.py measures it).
EVENTS_CONFIG = {
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "cleanup.policy": "delete",
    "compression.type": "zstd",
}
# Operators' audit log: kept forever like the events; one partition holds its one chain.
AUDIT_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}
# Token revocations: only each user's latest matters.
REVOCATIONS_CONFIG = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)}
# librdkafka logs every refused connection to stderr; a probe reports failure by its result.
QUIET = {"log_level": 0}
#: One copy, as on the single-broker dev stack; a real cluster passes its settings' replication.
SINGLE_COPY = KafkaReplication()


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """A confluent-kafka producer config for the command path.

    `extra` is merged verbatim and wins, e.g. `**{"message.timeout.ms": 5000}` to fail faster.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        # Idempotence with acks=all: a retried send neither duplicates nor reorders.
        **PRODUCER_DURABILITY,
        # A command waits for its events; batching would only add latency here.
        "linger.ms": 0,
        # Java clients and aiokafka hash keys with murmur2: same key, same partition everywhere.
        "partitioner": "murmur2_random",
        # Fail a send within seconds when the broker is gone instead of the 5 min default.
        "message.timeout.ms": 30_000,
        "socket.timeout.ms": 10_000,
    }
    config.update(extra)
    return config


def ensure_topics(
    bootstrap: str,
    topics: Topics,
    partitions: int,
    timeout: float = 30,
    replication: KafkaReplication = SINGLE_COPY,
) -> None:
    """Create the commands, events, decider-snapshots, media-nodes, audit and revocations topics
    if missing, with `replication`'s copies; raise if the commands, events or snapshots topic
    has other partitions.

    Returns once every partition of each topic has a leader, so clients can use them at once.
    An existing topic keeps its replication (changing it is a reassignment, an operator's job).
    """
    if partitions < 1:
        raise InfraError(f"a topic needs at least one partition, not {partitions}")
    problem = replication.problem()
    if problem is not None:
        raise InfraError(f"cannot create the Kafka topics: {problem}")
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000, "log.connection.close": False}
    )
    deadline = time.monotonic() + timeout
    wanted = _new_topics(topics, partitions, replication)
    _create(admin, wanted, deadline, bootstrap)
    for topic in wanted:
        _wait_for_leaders(admin, topic.topic, topic.num_partitions, deadline)


def kafka_reachable(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the cluster answers a metadata request within `timeout` seconds; never raises."""
    try:
        admin = AdminClient(
            {
                "bootstrap.servers": bootstrap,
                "socket.timeout.ms": max(10, int(timeout * 1000)),
                "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
                **QUIET,
            }
        )
        admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return True


def _new_topics(
    topics: Topics, partitions: int, replication: KafkaReplication = SINGLE_COPY
) -> list[NewTopic]:
    copies = replication.factor
    # Set on each topic, whatever the brokers' default: acks=all then means this many copies.
    insync = {"min.insync.replicas": str(replication.min_insync)}
    commands = {"retention.ms": str(COMMANDS_RETENTION_MS), "cleanup.policy": "delete"}
    return [
        NewTopic(topics.commands, partitions, copies, config={**commands, **insync}),
        NewTopic(topics.events, partitions, copies, config={**EVENTS_CONFIG, **insync}),
        # The decider's changelog: a snapshot lives in the partition number of its events.
        NewTopic(
            topics.decider_snapshots, partitions, copies, config={**SNAPSHOTS_CONFIG, **insync}
        ),
        # Heartbeats: only each node's latest matters; one partition keeps them in one order.
        NewTopic(topics.media_nodes, 1, copies, config={**MEDIA_NODES_CONFIG, **insync}),
        NewTopic(topics.audit, 1, copies, config={**AUDIT_CONFIG, **insync}),
        NewTopic(topics.revocations, 1, copies, config={**REVOCATIONS_CONFIG, **insync}),
    ]


#: Errors of the client's own connections, not answers: the request is sent again. A broker
#: handle is destroyed when a broker drops out of the cluster's metadata (a node of a cluster
#: still forming, or restarting), failing what was in flight on it.
TRANSIENT = frozenset({KafkaError._DESTROY_BROKER, KafkaError._TRANSPORT})


def _create(admin: AdminClient, wanted: list[NewTopic], deadline: float, bootstrap: str) -> None:
    """Create `wanted`, sending again the topics whose request failed on a transient error
    until `deadline`; a topic that exists already counts as created."""
    while wanted:
        remaining = max(1.0, deadline - time.monotonic())
        futures = admin.create_topics(
            wanted, operation_timeout=remaining, request_timeout=remaining
        )
        failed = {
            name for name, future in futures.items() if _creation_failed(name, future, bootstrap)
        }
        wanted = [topic for topic in wanted if topic.topic in failed]
        if not wanted:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(topic.topic for topic in wanted)
            raise InfraError(f"could not create Kafka topics {names} on {bootstrap} in time")
        time.sleep(0.2)


def _creation_failed(name: str, future: Any, bootstrap: str) -> bool:
    """False once `name` exists, True after a transient error; InfraError for any other."""
    # exception() rather than result(): a raised error's traceback would tie the admin client
    # into a reference cycle and keep its connections open until the next garbage collection.
    exc = future.exception()
    if exc is None:
        return False
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
        return False
    if isinstance(error, KafkaError) and error.code() in TRANSIENT:
        return True
    raise InfraError(f"could not create Kafka topic {name} on {bootstrap}: {exc}")


def _wait_for_leaders(admin: AdminClient, name: str, partitions: int, deadline: float) -> None:
    while True:
        found = _partition_leaders(admin, name, max(0.5, deadline - time.monotonic()))
        if found is not None and len(found) != partitions:
            raise InfraError(
                f"Kafka topic {name} exists with {len(found)} partitions, but {partitions} are "
                f"configured; set CHORUS_PARTITIONS={len(found)} or use another topic prefix"
            )
        if found is not None and all(leader >= 0 for leader in found):
            return
        if time.monotonic() >= deadline:
            raise InfraError(f"Kafka topic {name} has no leader for every partition yet")
        time.sleep(0.1)


def _partition_leaders(admin: AdminClient, name: str, timeout: float) -> list[int] | None:
    """Each partition's leader id (-1: none yet), or None while the topic is not visible."""
    try:
        metadata = admin.list_topics(topic=name, timeout=timeout)
    except KafkaException:
        return None
    topic = metadata.topics.get(name)
    if topic is None or topic.error is not None:
        return None
    return [partition.leader for partition in topic.partitions.values()]
