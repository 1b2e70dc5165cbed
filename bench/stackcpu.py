"""CPU time of every process of a running stack (services, Kafka, PostgreSQL), and whether the
worker's decisions keep up with the commands accepted, sampled from the services' metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import BenchStack
from bench.proc import cpu_seconds, listening_pid


def stack_processes(stack: BenchStack) -> dict[str, int]:
    """Each process tree of the stack by name: its services, the broker's JVM and PostgreSQL
    (the postmaster with its backends), the last two found by their listening ports."""
    found: dict[str, int] = {}
    for child in stack.children:
        if child.process is not None:
            pid = child.process.pid
            found[child.name if child.name not in found else f"{child.name}-{pid}"] = pid
    kafka_port = int(stack.kafka.split(",")[0].rsplit(":", 1)[1])
    database_port = urlsplit(stack.database_url).port or 5432
    for name, port in (("kafka", kafka_port), ("postgresql", database_port)):
        listener = listening_pid(port)
        if listener is not None:
            found[name] = listener
    return found


@dataclass
class CpuMeter:
    """CPU seconds each process tree spent between `start()` and `stop()`."""

    processes: Mapping[str, int]
    _before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.processes.items()}

    def stop(self) -> dict[str, float]:
        self.spent = {
            name: cpu_seconds(pid) - self._before[name] for name, pid in self.processes.items()
        }
        return self.spent


def metric_total(url: str, family_name: str, **labels: str) -> float:
    """The sum of a counter's samples at `url`/metrics whose labels include `labels`."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            for sample in family.samples:
                if sample.name.endswith("_total") and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
    return total


@dataclass
class DecisionLag:
    """Commands accepted (202) minus commands decided, sampled once a second in a thread."""

    commands: str
    worker: str
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, lag)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    decided_at_start: float = 0.0
    _base: float = 0.0
    _started: float = 0.0

    def accepted(self) -> float:
        return metric_total(self.commands, "chorus_http_requests", status="202")

    def decided(self) -> float:
        return metric_total(self.worker, "chorus_commands_decided")

    def start(self) -> None:
        self.decided_at_start = self.decided()
        self._base = self.accepted() - self.decided_at_start
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append((time.monotonic() - self._started, self.undecided()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def drain_seconds(self, timeout: float = 30.0) -> float:
        """Seconds from now until every accepted command is decided (inf past `timeout`)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.undecided() <= 0:
                return time.monotonic() - started
            time.sleep(0.05)
        return float("inf")

    def undecided(self) -> float:
        return self.accepted() - self.decided() - self._base

    def bounded(self) -> bool:
        """The lag did not grow over the run: the second half's peak is at most the first's
        (or below a second's worth of a hundred commands, noise)."""
        lags = [lag for _, lag in self.samples]
        if len(lags) < 4:
            return max(lags, default=0) < 100
        half = len(lags) // 2
        return max(lags[half:]) <= max(max(lags[:half]), 100)
