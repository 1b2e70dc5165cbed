"""The tick schedule: absolute deadlines, no drift, stalls skip ticks instead of bursting."""

from __future__ import annotations

import pytest

from media.tick_clock import TickSchedule


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_deadlines_are_absolute_so_slow_work_does_not_drift() -> None:
    clock = FakeClock()
    schedule = TickSchedule(clock, period=0.02)
    first = schedule.next_tick()
    assert (first.index, first.wait, first.skipped) == (0, 0.0, 0)
    # Each tick's work takes 7 ms and the sleep overshoots by 1 ms: the next wait shrinks to match.
    for k in range(1, 1000):
        clock.now += 0.007
        tick = schedule.next_tick()
        assert tick.index == k and tick.skipped == 0
        assert tick.wait == pytest.approx(schedule.deadline(k) - clock.now)
        clock.now += tick.wait + 0.001
    assert schedule.deadline(999) == pytest.approx(1000.0 + 999 * 0.02)


def test_a_late_tick_within_a_period_runs_at_once_without_skipping() -> None:
    clock = FakeClock()
    schedule = TickSchedule(clock, period=0.02)
    schedule.next_tick()
    clock.now += 0.035  # tick 1 was due at +0.020
    tick = schedule.next_tick()
    assert (tick.index, tick.wait, tick.skipped) == (1, 0.0, 0)
    following = schedule.next_tick()
    assert following.index == 2 and following.wait == pytest.approx(0.005)


def test_a_stall_skips_the_missed_ticks_and_counts_them() -> None:
    clock = FakeClock()
    schedule = TickSchedule(clock, period=0.02)
    schedule.next_tick()
    clock.now += 0.5  # a 500 ms stall: ticks 1..24 are gone, 25 is due now
    tick = schedule.next_tick()
    assert (tick.index, tick.wait, tick.skipped) == (25, 0.0, 24)
    after = schedule.next_tick()
    assert (after.index, after.skipped) == (26, 0)
    assert after.wait == pytest.approx(0.02)
