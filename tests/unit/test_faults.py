"""Fault points: off unless planned, and then exactly at the n-th time they are reached."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from config.faults import CRASH_EXIT_CODE, NO_FAULTS, Fault, FaultInjected, FaultPlanError, Faults
from config.settings import Settings


def test_a_plan_is_read_from_the_settings() -> None:
    settings = Settings.from_env({"CHORUS_FAULTS": "a.b=crash@5, c=fail"})

    assert Faults.parse(settings.faults)._plan == {"a.b": Fault("crash", 5), "c": Fault("fail")}
    assert Faults.parse(Settings.from_env({}).faults)._plan == {}


@pytest.mark.parametrize(
    "plan", ["a.b", "a.b=explode", "=crash", "a=crash@0", "a=fail@x", "a=fail@3-2", "a=fail@1-"]
)
def test_a_plan_that_cannot_be_read_is_refused(plan: str) -> None:
    with pytest.raises(FaultPlanError):
        Faults.parse(plan)


def test_a_fault_strikes_the_n_th_time_only_and_other_points_are_untouched() -> None:
    faults = Faults.parse("here=fail@3")

    faults.point("here")
    faults.point("here")
    faults.point("elsewhere")
    with pytest.raises(FaultInjected):
        faults.point("here")
    faults.point("here")


def test_a_fault_with_a_range_strikes_each_time_in_it() -> None:
    faults = Faults.parse("here=fail@2-3")
    assert faults._plan == {"here": Fault("fail", 2, 3)}

    faults.point("here")
    for _ in range(2):
        with pytest.raises(FaultInjected):
            faults.point("here")
    faults.point("here")


def test_no_faults_does_nothing() -> None:
    for _ in range(3):
        NO_FAULTS.point("decider.after_events_acked")


def test_a_crash_ends_the_process_at_once_with_its_own_status() -> None:
    program = textwrap.dedent(
        """
        from config.faults import Faults
        faults = Faults.parse("here=crash@2")
        faults.point("here")
        print("first", flush=True)
        try:
            faults.point("here")
        finally:
            print("no cleanup runs", flush=True)
        """
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)

    assert (ran.returncode, ran.stdout) == (CRASH_EXIT_CODE, "first\n")
