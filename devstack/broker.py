"""A real Apache Kafka broker (KRaft, one node) run from jars fetched once from Maven Central."""

from __future__ import annotations

import base64
import fcntl
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from adapters.errors import InfraError
from config.settings import KafkaReplication, default_cache_dir
from devstack.server import (
    HOST,
    LocalServer,
    cmdline,
    launch_group,
    read_int,
    rotate_log,
    signal_group,
    stop_group,
    tail_text,
)

KAFKA_VERSION = "3.9.2"
HERE = Path(__file__).resolve().parent
POM = HERE / "kafka" / "pom.xml"
LOG4J = HERE / "kafka" / "log4j.properties"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
INSTALL_HINT = "install Java and Maven first, e.g. `apt-get install openjdk-17-jre-headless maven`"
# Kafka's default start script, minus the 1 GB heap: short pauses, and die rather than limp on.
JVM_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)


def kafka_libs(cache_dir: Path | None = None) -> Path:
    """The folder of Kafka's jars, fetched with Maven into the per-user cache on first use.

    A lock serialises concurrent callers; the folder appears by an atomic rename, so a fetch
    that was interrupted half-way never counts as done.
    """
    version_dir = (cache_dir or default_cache_dir()) / f"kafka-{KAFKA_VERSION}"
    libs = version_dir / "libs"
    if _libs_complete(libs):
        return libs
    mvn = require_tool("mvn")
    version_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(version_dir / ".lock"):
        if not _libs_complete(libs):
            _fetch_libs(mvn, libs)
    return libs


def require_tool(name: str) -> str:
    """The path of a program on PATH, or an InfraError saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise InfraError(f"`{name}` is not on PATH: {INSTALL_HINT}")
    return found


def _libs_complete(libs: Path) -> bool:
    return (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fetch_libs(mvn: str, libs: Path) -> None:
    # Left-overs of a fetch that was killed; holding the lock, nobody else is writing them.
    for stale in libs.parent.glob(".libs-*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=".libs-", dir=libs.parent))
    try:
        # A copy of the pom: Maven must not write next to an installed (read-only) package.
        shutil.copy(POM, work / "pom.xml")
        out = work / "libs"
        argv = [mvn, "-B", "-q", "-f", str(work / "pom.xml")]
        argv += [f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DincludeScope=runtime"]
        argv += [f"-DoutputDirectory={out}"]
        done = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not _libs_complete(out):
            tail = tail_text(done.stdout + done.stderr)
            raise InfraError(f"Maven could not fetch Kafka {KAFKA_VERSION}'s jars:\n{tail}")
        out.rename(libs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class ClusterNode:
    """Where one broker stands in its cluster; the default is a cluster of one."""

    node_id: int = 1
    #: `controller.quorum.voters` (`id@host:port,...`); None: this node alone.
    voters: str | None = None
    #: Copies of the broker's own topics (consumer offsets, transactions) and the topic default.
    replication: KafkaReplication = field(default_factory=KafkaReplication)
    #: More server.properties, e.g. shorter failure detection for tests.
    extra: Mapping[str, str] = field(default_factory=dict)


class KafkaBroker(LocalServer):
    """One local Kafka node (broker and controller) whose state lives in `data_dir`.

    The data directory keeps the cluster id, the formatted log dirs and the ports, so
    `start()` after `stop()` (or in a later process) brings back the same cluster.
    """

    what = "Kafka broker"

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = "512m",
        node: ClusterNode | None = None,
        reserved: Iterable[int] = (),
    ) -> None:
        super().__init__(data_dir, reserved)
        self.heap = heap
        self.node = node or ClusterNode()
        self._wanted_port = port
        self._wanted_controller_port = controller_port
        self._ports: tuple[int, int] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # --- what callers see ------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """`127.0.0.1:<port>` of the running broker."""
        if self._ports is None or not self.running:
            raise InfraError(f"the Kafka broker of {self.data_dir} is not running")
        return f"{HOST}:{self._ports[0]}"

    @property
    def port(self) -> int | None:
        """The client port of the last start, or None before the first."""
        return None if self._ports is None else self._ports[0]

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def running(self) -> bool:
        """True while the JVM this object started is alive."""
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        """The JVM's return code once it ended by itself; None while it runs or when stopped."""
        return None if self._process is None else self._process.poll()

    @property
    def log_path(self) -> Path:
        """The broker's stdout and stderr, appended over restarts."""
        return self.data_dir / "broker.log"

    @property
    def properties_path(self) -> Path:
        """The broker's server.properties, rewritten at each start."""
        return self.data_dir / "server.properties"

    def start(self, timeout: float = 90) -> str:
        """Start the broker (formatting its storage the first time) and wait until it answers.

        Returns the bootstrap address. Raises InfraError with the log's tail if the JVM exits
        or does not answer within `timeout` seconds.
        """
        if self.running:
            return self.bootstrap
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def launch(self) -> None:
        """Format the storage the first time and start the JVM, without waiting for it.

        A node of a cluster answers only once a majority of its controllers run, so a cluster
        launches every node before it waits for any (`wait_ready`).
        """
        java = require_tool("java")
        libs = kafka_libs()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_orphan()
        self._ports = self._choose_ports()
        self._write_properties(*self._ports)
        self._format_once(java, libs)
        self._launch(java, libs)

    def kill(self) -> None:
        """SIGKILL the JVM (a crash: no clean shutdown), and wait until it is gone."""
        process = self._process
        if process is not None:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the broker's process group (a clean shutdown), SIGKILL after `timeout` s."""
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout)
            # Only our own broker's: another run's file is what _refuse_orphan looks at.
            (self.data_dir / "broker.pid").unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    # --- start-up steps --------------------------------------------------------------------

    def _refuse_orphan(self) -> None:
        """A broker left running by a killed supervisor would hold the log dirs' lock."""
        pid = read_int(self.data_dir / "broker.pid")
        if pid is not None and str(self.properties_path) in cmdline(pid):
            raise InfraError(
                f"a Kafka broker (pid {pid}) of an earlier run still uses {self.data_dir}; "
                f"stop it first (`kill {pid}`)"
            )

    def _choose_ports(self) -> tuple[int, int]:
        wanted = {"port": self._wanted_port, "controller_port": self._wanted_controller_port}
        ports = self.choose_ports(wanted)
        return ports["port"], ports["controller_port"]

    def _write_properties(self, port: int, controller_port: int) -> None:
        node = self.node
        voters = node.voters or f"{node.node_id}@{HOST}:{controller_port}"
        copies = str(node.replication.factor)
        properties = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "data"),
            # Every topic is created explicitly with its partition count (see NOTES.md).
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "default.replication.factor": copies,
            "min.insync.replicas": str(node.replication.min_insync),
            "offsets.topic.replication.factor": copies,
            # 4 instead of 50 partitions: the first consumer group starts in a fraction.
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": copies,
            "transaction.state.log.min.isr": str(node.replication.min_insync),
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            # Workers may ask for a short session (CHORUS_WORKER_SESSION_TIMEOUT): a fast takeover.
            "group.min.session.timeout.ms": "1000",
            **node.extra,
        }
        text = "".join(f"{key}={value}\n" for key, value in properties.items())
        self.properties_path.write_text("# Written by devstack/broker.py at each start.\n" + text)

    def _format_once(self, java: str, libs: Path) -> None:
        if (self.data_dir / "data" / "meta.properties").is_file():
            return
        id_file = self.data_dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id() + "\n")
        argv = [java, "-cp", f"{libs}/*", f"-Dlog4j.configuration=file:{LOG4J}"]
        argv += ["kafka.tools.StorageTool", "format", "--ignore-formatted"]
        argv += ["-t", id_file.read_text().strip(), "-c", str(self.properties_path)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = tail_text(done.stdout + done.stderr)
            raise InfraError(f"formatting Kafka storage in {self.data_dir} failed:\n{output}")

    def _launch(self, java: str, libs: Path) -> None:
        rotate_log(self.log_path)
        self._log = self.log_path.open("ab")
        self._log.write(f"--- chorus: starting Kafka {KAFKA_VERSION} at {time.ctime()}\n".encode())
        self._log.flush()
        argv = [java, f"-Xmx{self.heap}", *JVM_OPTIONS, "-cp", f"{libs}/*"]
        argv += [f"-Dlog4j.configuration=file:{LOG4J}", "kafka.Kafka", str(self.properties_path)]
        self._process = launch_group(argv, self._log, cwd=self.data_dir)
        (self.data_dir / "broker.pid").write_text(f"{self._process.pid}\n")

    def wait_ready(self, timeout: float) -> None:
        """Wait until the launched broker answers a metadata request; InfraError with its log's
        tail if the JVM exits or does not answer within `timeout` seconds."""
        if self._process is None or self._ports is None:
            raise InfraError(f"the Kafka broker of {self.data_dir} was not launched")
        admin = AdminClient(
            {
                "bootstrap.servers": f"{HOST}:{self._ports[0]}",
                # The default back-off grows to 10 s while the JVM is still loading.
                "reconnect.backoff.ms": 100,
                "reconnect.backoff.max.ms": 250,
                "log_level": 0,
            }
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise self.failure(f"exited with status {self._process.returncode}")
            with suppress(KafkaException):
                admin.list_topics(timeout=1.0)
                return
        raise self.failure(f"did not answer within {timeout:.0f} s")


# --- helpers ---------------------------------------------------------------------------------


def new_cluster_id() -> str:
    """A random id in Kafka's own format (base64url of 16 bytes, no padding)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # Kafka never hands out ids with a leading '-': they read as options on a command line.
        if not cluster_id.startswith("-"):
            return cluster_id
