"""The supervisor's policy: restart what died after a back-off, give up on a crash loop."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from adapters.errors import InfraError
from devstack.supervisor import GiveUp, RestartPolicy, Supervisor, describe_exit


@dataclass
class FakeUnit:
    name: str
    dead: str | None = None
    starts: int = 0
    fail_starts: int = 0  # the next restarts that raise

    def ended(self) -> str | None:
        return self.dead

    def restart(self) -> None:
        if self.fail_starts:
            self.fail_starts -= 1
            raise InfraError("the port is taken")
        self.starts += 1
        self.dead = None

    def log_tail(self) -> str:
        return f"last words of {self.name}"


@dataclass
class Clock:
    now: float = 0.0
    lines: list[str] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now


def _supervisor(*units: FakeUnit, clock: Clock) -> Supervisor:
    return Supervisor(
        units, RestartPolicy(limit=3, window=60.0), say=clock.lines.append, clock=clock
    )


def test_a_dead_unit_is_restarted_at_once_then_after_a_back_off_the_others_left_alone() -> None:
    clock = Clock()
    worker, queries = FakeUnit("worker"), FakeUnit("queries")
    supervisor = _supervisor(worker, queries, clock=clock)

    worker.dead = "was killed by SIGKILL"
    supervisor.check()
    assert "worker was killed by SIGKILL; restarting it at once" in clock.lines[0]
    assert "last words of worker" in clock.lines[0]
    assert (worker.starts, queries.starts) == (1, 0)
    assert clock.lines[-1] == "chorus: worker restarted"

    worker.dead = "exited with status 1"
    supervisor.check()
    assert worker.starts == 1  # waiting out the back-off
    assert "worker exited with status 1; restarting it in 0.5 s" in clock.lines[-1]
    clock.now = 0.5
    supervisor.check()
    assert (worker.starts, queries.starts) == (2, 0)


def test_back_off_doubles_and_a_crash_loop_gives_up_with_the_log() -> None:
    clock = Clock()
    worker = FakeUnit("worker")
    supervisor = _supervisor(worker, clock=clock)
    delays = []
    for _ in range(3):
        worker.dead = "exited with status 1"
        supervisor.check()
        said = next(line for line in clock.lines if "restarting it" in line)
        clock.lines.clear()
        delays.append(said.split("restarting it ")[1].split(" (")[0])
        clock.now += 10
        supervisor.check()
    assert delays == ["at once", "in 0.5 s", "in 1.0 s"]

    worker.dead = "exited with status 1"
    with pytest.raises(GiveUp, match="after 3 restarts within 60 s; stopping") as given_up:
        supervisor.check()
    assert "last words of worker" in str(given_up.value)


def test_restarts_older_than_the_window_are_forgiven() -> None:
    clock = Clock()
    worker = FakeUnit("worker")
    supervisor = _supervisor(worker, clock=clock)
    for _ in range(6):
        worker.dead = "exited with status 1"
        supervisor.check()
        clock.now += 61
        supervisor.check()
    assert worker.starts == 6


def test_a_restart_that_fails_is_retried_and_counted() -> None:
    clock = Clock()
    kafka = FakeUnit("kafka", dead="was killed by SIGKILL", fail_starts=1)
    supervisor = _supervisor(kafka, clock=clock)
    supervisor.check()  # restarted at once, which fails
    assert (
        "kafka could not be restarted (the port is taken); restarting it in 0.5 s"
        in (clock.lines[-1])
    )
    assert kafka.starts == 0
    clock.now = 0.5
    supervisor.check()
    assert kafka.starts == 1


def test_exit_codes_are_described() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"


def test_deaths_and_restarts_are_counted_per_unit() -> None:
    registry = CollectorRegistry()
    clock = Clock()
    worker, queries = FakeUnit("worker"), FakeUnit("queries", fail_starts=0)
    supervisor = Supervisor(
        [worker, queries],
        RestartPolicy(limit=3),
        say=clock.lines.append,
        clock=clock,
        registry=registry,
    )

    def value(name: str, unit: str) -> float | None:
        return registry.get_sample_value(name, {"unit": unit})

    worker.dead = "was killed by SIGKILL"
    supervisor.check()  # restarted at once
    assert value("chorus_supervisor_deaths_total", "worker") == 1.0
    assert value("chorus_supervisor_restarts_total", "worker") == 1.0
    worker.dead = "was killed by SIGKILL"
    supervisor.check()  # waits for its back-off
    assert value("chorus_supervisor_deaths_total", "worker") == 2.0
    assert value("chorus_supervisor_unit_up", "worker") == 0.0
    assert value("chorus_supervisor_restarts_total", "worker") == 1.0
    clock.now = 1.0
    supervisor.check()
    assert value("chorus_supervisor_restarts_total", "worker") == 2.0
    assert value("chorus_supervisor_unit_up", "worker") == 1.0
    assert value("chorus_supervisor_deaths_total", "queries") == 0.0
    assert value("chorus_supervisor_unit_up", "queries") == 1.0


def test_a_crash_loop_is_counted() -> None:
    registry = CollectorRegistry()
    clock = Clock()
    worker = FakeUnit("worker")
    supervisor = Supervisor(
        [worker], RestartPolicy(limit=1), say=clock.lines.append, clock=clock, registry=registry
    )
    worker.dead = "exited with status 1"
    supervisor.check()
    clock.now = 1.0
    supervisor.check()
    worker.dead = "exited with status 1"
    with pytest.raises(GiveUp):
        supervisor.check()
    assert registry.get_sample_value("chorus_supervisor_crash_loops_total") == 1.0
