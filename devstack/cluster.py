"""Several local Kafka nodes in one KRaft cluster (each broker and controller), for fault tests."""

from __future__ import annotations

import time
from contextlib import suppress
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from adapters.errors import InfraError
from config.settings import KafkaReplication
from devstack.broker import ClusterNode, KafkaBroker, new_cluster_id
from devstack.server import HOST, free_port

# Three JVMs share the machine with everything else: small heaps, few threads, and a log
# cleaner that does not take half the heap for its buffer (128 MB by default).
SMALL_NODE = {
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
}
#: Three copies, two of which must have a write: one node can be lost without losing a write.
THREE_COPIES = KafkaReplication(factor=3, min_insync=2)


class KafkaCluster:
    """`size` local nodes with one cluster id and a controller quorum of all of them.

    `failure_detection_ms` is the brokers' session with the controller: a node that stops
    heartbeating is fenced after it, and its partitions get new leaders (Kafka's default, 9 s,
    suits real networks; a test on loopback can afford less).
    """

    def __init__(
        self,
        data_dir: Path,
        size: int = 3,
        heap: str = "256m",
        replication: KafkaReplication = THREE_COPIES,
        failure_detection_ms: int = 3000,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.size = size
        self.heap = heap
        self.replication = replication
        self.failure_detection_ms = failure_detection_ms
        self.nodes: dict[int, KafkaBroker] = {}
        self.started_in: float | None = None  # seconds the last start took

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated (clients find the live ones)."""
        return ",".join(f"{HOST}:{node.port}" for node in self.nodes.values())

    def start(self, timeout: float = 240) -> str:
        """Launch every node, then wait until each answers; returns the bootstrap list.

        Raises InfraError (with the failing node's log tail) and stops every node if one exits
        or does not answer within `timeout` seconds.
        """
        self._create_nodes()
        began = time.monotonic()
        deadline = began + timeout
        try:
            for node in self.nodes.values():
                node.launch()
            for node in self.nodes.values():
                node.wait_ready(max(1.0, deadline - time.monotonic()))
            self._wait_formed(deadline)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self.bootstrap

    def stop(self, timeout: float = 30) -> None:
        """Stop every node this cluster started (a crashed one is only reaped)."""
        for node in self.nodes.values():
            node.stop(timeout)

    def kill_all(self) -> None:
        """SIGKILL every node at once: the fast end of a throwaway cluster (no clean shutdown,
        which with a node already dead waits on leadership moves)."""
        for node_id in self.nodes:
            self.kill(node_id)
        self.stop()

    def kill(self, node_id: int) -> None:
        """SIGKILL one node: a crash, with no clean shutdown and no leadership handed over."""
        self.nodes[node_id].kill()

    def leader(self, topic: str, partition: int, timeout: float = 10.0) -> int:
        """The node id that leads `partition` of `topic` now (-1 while it has none)."""
        metadata = self._admin().list_topics(topic=topic, timeout=timeout)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or partition not in found.partitions:
            raise InfraError(f"Kafka topic {topic} has no partition {partition}")
        return int(found.partitions[partition].leader)

    def in_sync(self, topic: str, timeout: float = 10.0) -> dict[int, list[int]]:
        """Each partition's in-sync replicas (node ids), as the cluster reports them now."""
        try:
            metadata = self._admin().list_topics(topic=topic, timeout=timeout)
        except KafkaException as exc:
            raise InfraError(f"no metadata for Kafka topic {topic}: {exc}") from exc
        partitions = metadata.topics[topic].partitions
        return {number: list(found.isrs) for number, found in partitions.items()}

    def _wait_formed(self, deadline: float) -> None:
        """Wait until every node's metadata lists every node: a node answers before the
        controller has registered (unfenced) all of them, and a client told of a broker that
        then drops out of the metadata fails what it had in flight on it."""
        for node_id, node in self.nodes.items():
            admin = AdminClient({"bootstrap.servers": f"{HOST}:{node.port}", "log_level": 0})
            while True:
                with suppress(KafkaException):
                    if len(admin.list_topics(timeout=1.0).brokers) == self.size:
                        break
                if time.monotonic() >= deadline:
                    raise node.failure(f"node {node_id} does not see all {self.size} nodes")
                time.sleep(0.1)

    def _admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})

    def _create_nodes(self) -> None:
        if self.nodes:
            return
        taken: set[int] = set()
        ports: dict[int, tuple[int, int]] = {}
        for node_id in range(1, self.size + 1):
            port = free_port(avoid=taken)
            taken.add(port)
            controller_port = free_port(avoid=taken)
            taken.add(controller_port)
            ports[node_id] = (port, controller_port)
        voters = ",".join(f"{n}@{HOST}:{cport}" for n, (_, cport) in ports.items())
        detection = {
            "broker.session.timeout.ms": str(self.failure_detection_ms),
            "broker.heartbeat.interval.ms": str(max(100, self.failure_detection_ms // 6)),
        }
        cluster_id = _cluster_id(self.data_dir)
        for node_id, (port, controller_port) in ports.items():
            node_dir = self.data_dir / f"node-{node_id}"
            node_dir.mkdir(parents=True, exist_ok=True)
            # Every node is formatted with the same cluster id (KafkaBroker reads this file).
            (node_dir / "cluster.id").write_text(cluster_id + "\n")
            node = ClusterNode(
                node_id=node_id,
                voters=voters,
                replication=self.replication,
                extra={**SMALL_NODE, **detection},
            )
            self.nodes[node_id] = KafkaBroker(node_dir, port, controller_port, self.heap, node)


def _cluster_id(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
    id_file = data_dir / "cluster.id"
    if not id_file.is_file():
        id_file.write_text(new_cluster_id() + "\n")
    return id_file.read_text().strip()
