"""A pass split between this process and a helper process: the parts, progress and failures."""

from __future__ import annotations

from typing import Any

import pytest

from replay import parallel
from replay.bounds import ReplayError
from replay.parallel import Helper, Report, split
from replay.reading import Plan


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    monkeypatch.setattr(parallel, "MIN_RECORDS", 10)


def test_the_parts_hold_every_partition_once_and_about_half_the_records() -> None:
    plan: Plan = {0: (0, 50), 1: (10, 40), 2: (0, 30), 3: (5, 5), 4: (0, 20)}
    parts = split(plan)
    assert parts is not None
    ours, theirs = parts
    assert ours.keys() | theirs.keys() == {0, 1, 2, 4} and not ours.keys() & theirs.keys()
    assert {p: plan[p] for p in ours} == ours and {p: plan[p] for p in theirs} == theirs
    loads = [sum(end - start for start, end in part.values()) for part in parts]
    assert sorted(loads) == [60, 70]


def test_a_small_plan_one_partition_or_one_core_is_not_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert split({0: (0, 5), 1: (0, 4)}) is None
    assert split({0: (0, 100), 1: (100, 100)}) is None
    monkeypatch.setattr(parallel, "cores", lambda: 1)
    assert split({0: (0, 100), 1: (0, 100)}) is None


def count(bootstrap: str, topic: str, plan: Plan, report: Report) -> list[str]:
    """A helper's work without a broker: reports each partition's records read."""
    for partition, (start, end) in plan.items():
        report(end - start, partition)
    return [bootstrap, topic, *map(str, sorted(plan))]


def fail(bootstrap: str, topic: str, plan: Plan, report: Report) -> None:
    report(1, None)
    raise ReplayError(f"the broker at {bootstrap} does not answer")


def test_a_helper_reports_its_progress_then_its_result() -> None:
    helper = Helper.start(count, "broker:9092", "chorus.events", {3: (0, 7), 5: (2, 4)})
    reports: list[tuple[int, Any]] = []
    assert helper.result(lambda *report: reports.append(report)) == [
        "broker:9092",
        "chorus.events",
        "3",
        "5",
    ]
    assert reports == [(7, 3), (2, 5)]
    assert helper.process.returncode == 0


def test_a_helpers_failure_is_raised_in_the_caller() -> None:
    helper = Helper.start(fail, "broker:9092", "chorus.events", {0: (0, 1)})
    with pytest.raises(ReplayError, match="does not answer"):
        helper.result(lambda read, data: None)
