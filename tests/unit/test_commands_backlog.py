"""The commands a process appended and has not heard decided: at its limit it takes no more."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from commands.backlog import Backlog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_at_its_limit_it_refuses_until_a_decision_frees_a_place() -> None:
    registry = CollectorRegistry()
    backlog = Backlog(2, registry)
    backlog.add("a")
    assert not backlog.full()
    backlog.add("b")

    assert backlog.full()
    assert registry.get_sample_value("chorus_commands_overloaded_total") == 1
    assert registry.get_sample_value("chorus_commands_undecided") == 2
    backlog.discard("a")
    assert not backlog.full()
    assert registry.get_sample_value("chorus_commands_overloaded_total") == 1


def test_a_command_whose_notification_was_lost_stops_counting_after_max_age() -> None:
    clock = Clock()
    backlog = Backlog(2, max_age=30.0, clock=clock)
    backlog.add("lost")
    clock.now += 20
    backlog.add("recent")
    assert backlog.full()

    clock.now += 10.5  # "lost" is 30.5 s old, "recent" 10.5 s

    assert not backlog.full()
    assert len(backlog) == 1
    backlog.discard("recent")
    assert len(backlog) == 0


def test_a_command_sent_again_counts_from_its_new_send() -> None:
    clock = Clock()
    backlog = Backlog(2, max_age=30.0, clock=clock)
    backlog.add("retried")
    clock.now += 20
    backlog.add("other")
    clock.now += 5
    backlog.add("retried")  # its append's outcome was unknown: sent again, now
    clock.now += 25.5  # "other" is 30.5 s old, "retried" 25.5 s (and no longer the oldest)

    assert not backlog.full()
    assert len(backlog) == 1


def test_clearing_forgets_every_command_and_unknown_ones_are_ignored() -> None:
    backlog = Backlog(1)
    backlog.add("a")
    backlog.discard("never added")
    assert backlog.full()

    backlog.clear()

    assert not backlog.full()


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Backlog(0)
