"""Keeps `chorus up`'s processes alive: what dies is restarted, with back-off, until it dies too
often (a crash loop), which stops the stack with the end of its log.

A unit is anything that can say whether it still runs and start again: a service (`Child`), or
the Kafka broker and PostgreSQL server that `chorus up` started, restarted on the same data
directory and ports so that the services, which reconnect on their own, find them again.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from adapters.errors import InfraError
from devstack.broker import KafkaBroker
from devstack.database import LocalPostgres
from devstack.processes import Child, tail

LOG_TAIL_LINES = 20


class Unit(Protocol):
    """A process the supervisor keeps running."""

    @property
    def name(self) -> str: ...

    def ended(self) -> str | None:
        """None while it runs; else how it ended ("was killed by SIGKILL")."""

    def restart(self) -> None:
        """Start it again (raises InfraError if it cannot)."""

    def log_tail(self) -> str: ...


@dataclass(frozen=True)
class RestartPolicy:
    """At most `limit` restarts of one unit within `window` s. The first is at once (a worker
    back sooner is a takeover sooner); the waits before the next ones double from `first_delay`."""

    limit: int = 5
    window: float = 60.0
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, recent: int) -> float:
        """Seconds to wait before a restart, after `recent` restarts within the window."""
        if recent == 0:
            return 0.0
        return float(min(self.first_delay * 2.0 ** (recent - 1), self.max_delay))


class GiveUp(Exception):
    """The stack cannot be kept up: a unit died more often than the policy allows, or came
    back where the services would not find it."""


@dataclass
class _Record:
    restarts: deque[float] = field(default_factory=deque)
    due: float | None = None  # when a restart is scheduled


class SupervisorMetrics:
    """What `chorus up` counts about its children, for its own /metrics page."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deaths = Counter(
            "chorus_supervisor_deaths",
            "Children of `chorus up` that died (crashed, were killed or exited)",
            ["unit"],
            registry=registry,
        )
        self.restarts = Counter(
            "chorus_supervisor_restarts",
            "Children of `chorus up` started again after they died",
            ["unit"],
            registry=registry,
        )
        self.up = Gauge(
            "chorus_supervisor_unit_up",
            "1 while a child of `chorus up` runs, 0 while it waits for its restart",
            ["unit"],
            registry=registry,
        )
        self.crash_loops = Counter(
            "chorus_supervisor_crash_loops",
            "Times `chorus up` gave up because a child died too often",
            registry=registry,
        )


class Supervisor:
    """Watches units; `check()` is one pass, `run()` checks until a crash loop or a signal."""

    def __init__(
        self,
        units: Sequence[Unit],
        policy: RestartPolicy | None = None,
        say: Callable[[str], None] = lambda line: print(line, flush=True),
        clock: Callable[[], float] = time.monotonic,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.units = list(units)
        self.policy = policy or RestartPolicy()
        self._say = say
        self._clock = clock
        self._records = {unit.name: _Record() for unit in self.units}
        self.metrics = SupervisorMetrics(registry or CollectorRegistry())
        for unit in self.units:
            self.metrics.deaths.labels(unit.name)
            self.metrics.restarts.labels(unit.name)
            self.metrics.up.labels(unit.name).set(1)

    def run(self, interval: float = 0.1) -> int:
        """Supervise until the supervisor gives up (1); a signal ends it by its own exception."""
        while True:
            try:
                self.check()
            except GiveUp as exc:
                self._say(f"chorus: {exc}")
                return 1
            time.sleep(interval)

    def check(self) -> None:
        """Notice the units that died, and restart those whose back-off is over (in order:
        the broker and database come first, so services restart against live servers)."""
        for unit in self.units:
            record = self._records[unit.name]
            if record.due is None:
                how = unit.ended()
                if how is not None:
                    self.metrics.deaths.labels(unit.name).inc()
                    self.metrics.up.labels(unit.name).set(0)
                    self._schedule(unit, record, how)
            if record.due is not None and self._clock() >= record.due:
                self._restart(unit, record)

    def _schedule(self, unit: Unit, record: _Record, how: str) -> None:
        now = self._clock()
        while record.restarts and record.restarts[0] < now - self.policy.window:
            record.restarts.popleft()
        recent = len(record.restarts)
        if recent >= self.policy.limit:
            self.metrics.crash_loops.inc()
            raise GiveUp(
                f"{unit.name} {how}, after {recent} restarts within {self.policy.window:.0f} s; "
                f"stopping. The end of its log:\n{unit.log_tail()}"
            )
        delay = self.policy.delay(recent)
        record.due = now + delay
        when = "at once" if delay == 0 else f"in {delay:.1f} s"
        self._say(
            f"chorus: {unit.name} {how}; restarting it {when} "
            f"(restart {recent + 1} of at most {self.policy.limit} within "
            f"{self.policy.window:.0f} s). The end of its log:\n{unit.log_tail()}"
        )

    def _restart(self, unit: Unit, record: _Record) -> None:
        record.due = None
        record.restarts.append(self._clock())
        try:
            unit.restart()
        except (InfraError, OSError) as exc:
            self._schedule(unit, record, f"could not be restarted ({exc})")
            return
        self.metrics.restarts.labels(unit.name).inc()
        self.metrics.up.labels(unit.name).set(1)
        self._say(f"chorus: {unit.name} restarted")


def describe_exit(code: int) -> str:
    """How a process ended, from its return code."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class ServiceUnit:
    """A `chorus` service process, started again with the same command line and log."""

    child: Child

    @property
    def name(self) -> str:
        return self.child.name

    def ended(self) -> str | None:
        code = self.child.exit_code()
        return None if code is None else describe_exit(code)

    def restart(self) -> None:
        self.child.stop(5.0)  # reaps it and whatever of its group is left
        self.child.start()

    def log_tail(self) -> str:
        return self.child.log_tail(LOG_TAIL_LINES)


@dataclass
class BrokerUnit:
    """The Kafka broker `chorus up` started, restarted on its data directory and port."""

    broker: KafkaBroker
    bootstrap: str
    name: str = "kafka"

    def ended(self) -> str | None:
        code = self.broker.exit_code()
        return None if code is None else describe_exit(code)

    def restart(self) -> None:
        self.broker.stop()
        _same_address(self.name, self.bootstrap, self.broker.start())

    def log_tail(self) -> str:
        return _log_tail(self.broker.log_path)


@dataclass
class DatabaseUnit:
    """The PostgreSQL server `chorus up` started, restarted on its cluster and port."""

    database: LocalPostgres
    url: str
    name: str = "postgres"

    def ended(self) -> str | None:
        return None if self.database.running else "is gone (its postmaster is not running)"

    def restart(self) -> None:
        self.database.stop()
        _same_address(self.name, self.url, self.database.start())

    def log_tail(self) -> str:
        return _log_tail(self.database.log_path)


def _same_address(name: str, before: str, after: str) -> None:
    # The services were given the first address; one elsewhere would leave them stranded.
    if after != before:
        raise GiveUp(f"{name} came back at another address, which the services do not know")


def _log_tail(path: Path) -> str:
    return tail(path, LOG_TAIL_LINES)
