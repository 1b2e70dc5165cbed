"""Child processes of `chorus up`: started in their own process group, stopped without leftovers."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from config.settings import inherited_environment
from devstack.server import HOST, free_port, launch_group, stop_group, tail_text
from schemas.topics import Topics


@dataclass
class Child:
    """One service process with its log file and health URL."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = launch_group(self.argv, self._log, env=self.env)

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the child's process group, then SIGKILL whatever is left after `timeout`."""
        if self.process is not None:
            stop_group(self.process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        return tail_text(path.read_text(errors="replace"), lines)
    except OSError:
        return f"(no log at {path})"


def wait_healthy(children: list[Child], timeout: float, on_ready: object = None) -> list[Child]:
    """Poll each child's /healthz until all answer; returns children that died or timed out."""
    pending = list(children)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for child in list(pending):
            if child.exit_code() is not None:
                return [child]
            if child.healthy():
                pending.remove(child)
                if callable(on_ready):
                    on_ready(child)
        time.sleep(0.2)
    return pending


def chorus_argv(subcommand: str, *args: str) -> list[str]:
    """The command line that runs one `chorus` subcommand with this interpreter."""
    return [sys.executable, "-m", "cli.main", subcommand, *args]


@dataclass
class ServiceStack:
    """Chorus processes of a test or a benchmark, sharing one broker, database, topics and secret.

    Each process runs `chorus <service>` on a free loopback port, with this process's
    environment plus the stack's settings; `workdir` holds their logs (and is CHORUS_DATA_DIR).
    """

    kafka: str
    database_url: str
    topics: Topics
    workdir: Path
    partitions: int = 12
    worker_id: str = field(default_factory=lambda: f"chorus-test-{uuid.uuid4().hex[:12]}")
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    children: list[Child] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **inherited_environment(),
            "CHORUS_KAFKA": self.kafka,
            "CHORUS_DATABASE_URL": self.database_url,
            "CHORUS_SECRET": self.secret,
            "CHORUS_TOPIC_PREFIX": self.topics.prefix,
            "CHORUS_PARTITIONS": str(self.partitions),
            "CHORUS_WORKER_ID": self.worker_id,
            "CHORUS_DATA_DIR": str(self.workdir),
            **self.more_env(),
        }

    def more_env(self) -> dict[str, str]:
        """Settings a kind of stack adds to every process's environment."""
        return {}

    def start(
        self, service: str, timeout: float = 120.0, *, env: Mapping[str, str] | None = None
    ) -> str:
        """Start one more process of `service` (with `env` added to the stack's environment,
        e.g. CHORUS_FAULTS); returns its base URL once /healthz answers."""
        environment = {**self.env(), **(env or {})}
        child, url = start_service(service, environment, self.workdir, timeout=timeout)
        self.children.append(child)
        return url

    def stop_children(self) -> None:
        """Stop every process, the last started first."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


def start_service(
    service: str,
    env: Mapping[str, str],
    log_dir: Path,
    port: int | None = None,
    timeout: float = 120.0,
) -> tuple[Child, str]:
    """Start one `chorus` service on loopback (on a free port unless given); returns it and its
    URL once /healthz answers.

    Raises RuntimeError with the end of its log if it dies or does not answer in time (the child
    is then stopped).
    """
    port = port or free_port()
    child = Child(
        name=service,
        argv=chorus_argv(service, "--host", HOST, "--port", str(port)),
        env=env,
        log_path=log_dir / f"{service}-{port}.log",
        health_url=f"http://{HOST}:{port}/healthz",
    )
    child.start()
    if wait_healthy([child], timeout):
        child.stop()
        raise RuntimeError(f"{service} did not start:\n{child.log_tail(60)}")
    return child, f"http://{HOST}:{port}"
