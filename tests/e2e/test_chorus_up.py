"""`chorus up` as an operator runs it: ready, healthy, follows Kafka, leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer
from prometheus_client.parser import text_string_to_metric_families

from adapters.kafka import producer_config
from config.settings import read_stack_file
from db.engines import make_engine
from db.tables import users
from devstack.server import free_port
from schemas.topics import Topics
from tests.integration.conftest import read_topic
from tests.stack import Client

READY_TIMEOUT = 240.0
SERVICES = ("worker", "commands", "queries", "media", "web", "admin")


class Stack:
    """One `chorus up` process and what it printed."""

    def __init__(self, data_dir: Path, ports: dict[str, int]) -> None:
        env = {
            **os.environ,
            "CHORUS_DATA_DIR": str(data_dir),
            "CHORUS_PARTITIONS": "3",
            "CHORUS_WORKER_PORT": str(ports["worker"]),
            "CHORUS_COMMANDS_PORT": str(ports["commands"]),
            "CHORUS_QUERIES_PORT": str(ports["queries"]),
            "CHORUS_MEDIA_PORT": str(ports["media"]),
            "CHORUS_WEB_PORT": str(ports["web"]),
            "CHORUS_ADMIN_PORT": str(ports["admin"]),
            "CHORUS_SUPERVISOR_PORT": str(ports["supervisor"]),
        }
        for inherited in ("CHORUS_KAFKA", "CHORUS_DATABASE_URL", "CHORUS_SECRET"):
            env.pop(inherited, None)
        self.lines: list[str] = []
        self.closing: list[Callable[[], None]] = []  # clients of the stack, closed with it
        self.ready = threading.Event()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.strip() == "chorus: ready":
                self.ready.set()

    def wait_ready(self) -> float:
        started = time.monotonic()
        assert self.ready.wait(READY_TIMEOUT), "\n".join(self.lines)
        return time.monotonic() - started

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(90)
        self.reader.join(10)
        return code


@contextmanager
def running_stack(data_dir: Path, ports: dict[str, int]) -> Iterator[Stack]:
    stack = Stack(data_dir, ports)
    try:
        yield stack
    finally:
        for close in stack.closing:
            close()
        if stack.process.poll() is None:
            stack.process.kill()
            stack.process.wait(30)
        if stack.process.stdout is not None:
            stack.process.stdout.close()


def _processes_mentioning(marker: str) -> list[str]:
    """Live processes whose command line or environment names `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:
            continue
        if state != "Z" and (marker in cmdline or marker in environ):
            found.append(f"{entry.name}: {cmdline}")
    return found


def _kafka_pid(data_dir: Path) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "kafka.Kafka" in cmdline and str(data_dir) in cmdline:
            return int(entry.name)
    raise AssertionError("no Kafka broker process of this stack")


def _wait_status(url: str, status: int, timeout: float) -> httpx.Response:
    """The first answer of `url` with `status`, polled for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=3)
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code == status:
            return answer
        time.sleep(0.25)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s")


def _write_marks(data_dir: Path, mark: str) -> None:
    stack = read_stack_file(data_dir)
    engine = make_engine(stack["database_url"])
    with engine.begin() as conn:
        conn.execute(
            sa.insert(users).values(
                user_id=mark, email=f"{mark}@example.com", display_name="Mark", password_hash="x"
            )
        )
    engine.dispose()
    producer = Producer(producer_config(stack["kafka"]))
    producer.produce(Topics().events, key=b"e2e", value=mark.encode())
    assert producer.flush(30) == 0


def _marks_survived(data_dir: Path, mark: str) -> None:
    stack = read_stack_file(data_dir)
    engine = make_engine(stack["database_url"])
    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).select_from(users).where(users.c.user_id == mark)
        ).scalar_one()
    engine.dispose()
    assert count == 1
    consumer = Consumer(
        {
            "bootstrap.servers": stack["kafka"],
            "group.id": f"e2e-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([Topics().events])
    seen: list[bytes] = []
    deadline = time.monotonic() + 60
    while mark.encode() not in seen and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            seen.append(message.value())
    consumer.close()
    assert mark.encode() in seen


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory outside pytest's: run as root, PostgreSQL runs as `postgres`, which must
    traverse to it, and every pytest session starting on the machine closes pytest's folders
    again (0700)."""
    folder = Path(tempfile.mkdtemp(prefix="chorus-test-up-"))
    yield folder / "stack"
    shutil.rmtree(folder, ignore_errors=True)


def test_chorus_up_runs_the_stack_follows_kafka_and_leaves_nothing(data_dir: Path) -> None:
    ports: dict[str, int] = {}
    for name in (*SERVICES, "supervisor"):
        ports[name] = free_port(avoid=set(ports.values()))
    mark = str(uuid.uuid4())

    with running_stack(data_dir, ports) as first:
        first_ready = first.wait_ready()
        for name in SERVICES:
            url = f"http://127.0.0.1:{ports[name]}"
            assert f"{name}: {url}" in first.lines
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
        readyz = f"http://127.0.0.1:{ports['commands']}/readyz"
        assert httpx.get(readyz, timeout=5).status_code == 200
        _write_marks(data_dir, mark)

        kafka_pid = _kafka_pid(data_dir)
        os.kill(kafka_pid, signal.SIGSTOP)
        try:
            down = _wait_status(readyz, 503, timeout=10)
        finally:
            os.kill(kafka_pid, signal.SIGCONT)
        # Unready because of Kafka, and only Kafka; ready again once it resumes.
        assert down.json()["checks"] == {"kafka": False, "database": True}
        up = _wait_status(readyz, 200, timeout=60)
        assert up.json()["checks"] == {"kafka": True, "database": True}

        assert first.stop() == 0
    assert "chorus: stopped" in first.lines
    assert _processes_mentioning(str(data_dir)) == []

    with running_stack(data_dir, ports) as second:
        second_ready = second.wait_ready()
        _marks_survived(data_dir, mark)
        assert second.stop() == 0
    assert _processes_mentioning(str(data_dir)) == []
    print(f"first start {first_ready:.1f} s, second start {second_ready:.1f} s")


def _service_pid(data_dir: Path, service: str) -> int:
    """The pid of this stack's `chorus <service>` process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if f"cli.main {service} " in cmdline and str(data_dir) in environ:
            return int(entry.name)
    raise AssertionError(f"no {service} process of this stack")


def _wait_line(stack: Stack, text: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in stack.lines if text in line]
        if found:
            return found[0]
        assert stack.process.poll() is None, "\n".join(stack.lines)
        time.sleep(0.1)
    raise AssertionError(f"`chorus up` never said {text!r}:\n" + "\n".join(stack.lines))


def _decided_presence(client: Client, team_id: str, timeout: float = 120.0) -> str:
    """Set presence until a command is decided (Kafka may still be coming back); its id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.post(
            f"/v1/teams/{team_id}/presence",
            {"status": "busy", "device_id": "d"},
            Prefer="wait=10",
        )
        assert answer.status_code in (200, 202, 503), answer.text  # never a 500
        if answer.status_code == 200:
            assert answer.json()["status"] == "accepted"
            return str(answer.json()["command_id"])
        time.sleep(0.5)
    raise AssertionError("no command was decided after the restarts")


def _postmaster_pid(data_dir: Path) -> int:
    pid_file = data_dir / "postgres" / "cluster" / "postmaster.pid"
    return int(pid_file.read_text().split("\n", 1)[0])


def test_chorus_up_restarts_a_killed_worker_broker_and_database(data_dir: Path) -> None:
    ports: dict[str, int] = {}
    for name in (*SERVICES, "supervisor"):
        ports[name] = free_port(avoid=set(ports.values()))
    commands = f"http://127.0.0.1:{ports['commands']}"

    with running_stack(data_dir, ports) as stack:
        stack.wait_ready()
        alice = Client(commands).sign_up("alice")
        stack.closing.append(alice.http.close)
        team_id = alice.new_team()
        before = _decided_presence(alice, team_id)

        os.kill(_service_pid(data_dir, "worker"), signal.SIGKILL)
        _wait_line(stack, "chorus: worker was killed by SIGKILL; restarting it")
        _wait_line(stack, "chorus: worker restarted")
        after_worker = _decided_presence(alice, team_id)

        os.kill(_kafka_pid(data_dir), signal.SIGKILL)
        # The JVM needs seconds to come back: meanwhile the services say Kafka is down.
        assert httpx.get(f"{commands}/readyz", timeout=5).status_code == 503
        _wait_line(stack, "chorus: kafka was killed by SIGKILL; restarting it")
        _wait_line(stack, "chorus: kafka restarted")
        _wait_status(f"{commands}/readyz", 200, timeout=60)
        after_kafka = _decided_presence(alice, team_id)

        os.kill(_postmaster_pid(data_dir), signal.SIGKILL)
        _wait_line(stack, "chorus: postgres is gone")
        _wait_line(stack, "chorus: postgres restarted")
        after_postgres = _decided_presence(alice, team_id)

        decided = (before, after_worker, after_kafka, after_postgres)
        for command_id in decided:
            assert alice.get(f"/v1/commands/{command_id}").json()["status"] == "accepted"
        events = [e for e in _team_events(data_dir) if e.get("team_id") == team_id]
        causes = {e["causation_id"] for e in events if e["type"] == "presence.changed"}
        assert set(decided) <= causes
        counted = _supervisor_counts(ports["supervisor"])
        for unit in ("worker", "kafka", "postgres"):
            assert counted[("chorus_supervisor_deaths_total", unit)] == 1.0
            assert counted[("chorus_supervisor_restarts_total", unit)] == 1.0
            assert counted[("chorus_supervisor_unit_up", unit)] == 1.0
        assert counted[("chorus_supervisor_restarts_total", "commands")] == 0.0
        assert stack.process.poll() is None  # still running
        assert stack.stop() == 0
    assert "chorus: stopped" in stack.lines
    assert _processes_mentioning(str(data_dir)) == []
    print("\n".join(line for line in stack.lines if "restart" in line))


def _supervisor_counts(port: int) -> dict[tuple[str, str], float]:
    """`chorus up`'s own /metrics, as (sample name, unit) -> value."""
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, sample.labels.get("unit", "")): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }


def _team_events(data_dir: Path) -> list[dict[str, Any]]:
    stack = read_stack_file(data_dir)
    return read_topic(stack["kafka"], Topics().events)
