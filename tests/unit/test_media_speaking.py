"""Speaking detection: hysteresis over a ~400 ms window, changes reported a few times a second."""

from __future__ import annotations

import itertools

from media.speaking import SpeakingDetector, SpeakingPolicy

LOUD = -20.0
QUIET = -70.0
TICK = 0.02
# With a one-tick window the raw state follows every tick; only the rate limit holds it back.
FLIPPY = SpeakingPolicy(window_ticks=1, start_share=1.0, stop_share=0.0, min_report_interval=0.3)


def feed(detector: SpeakingDetector, levels: list[float], start: float) -> list[tuple[float, bool]]:
    """Feed one level per tick from `start`; the (time, state) of every reported change."""
    changes = []
    for i, level in enumerate(levels):
        now = start + i * TICK
        change = detector.update(level, now)
        if change is not None:
            changes.append((round(now, 3), change))
    return changes


def test_speaking_starts_after_a_share_of_the_window_and_stops_after_quiet() -> None:
    detector = SpeakingDetector(SpeakingPolicy(window_ticks=20, start_share=0.4, stop_share=0.1))
    changes = feed(detector, [LOUD] * 50 + [QUIET] * 50, start=0.0)
    # The 8th loud tick makes 40% of 20; the 18th quiet tick leaves 2 loud of 20 (10%).
    assert changes == [(round(7 * TICK, 3), True), (round(67 * TICK, 3), False)]
    assert detector.speaking is False


def test_a_click_or_a_breath_does_not_flip_it() -> None:
    detector = SpeakingDetector(SpeakingPolicy(window_ticks=20, start_share=0.4, stop_share=0.1))
    assert feed(detector, ([LOUD] * 3 + [QUIET] * 17) * 5, start=0.0) == []
    # Once speaking, short pauses between words do not end it.
    talk = ([LOUD] * 10 + [QUIET] * 6) * 10
    changes = feed(detector, talk, start=10.0)
    assert [state for _, state in changes] == [True]


def test_changes_are_reported_at_most_once_per_interval() -> None:
    policy = FLIPPY
    detector = SpeakingDetector(policy)
    # With a one-tick window the raw state follows every tick; reports are rate-limited.
    changes = feed(detector, [LOUD, QUIET] * 50, start=0.0)
    times = [t for t, _ in changes]
    assert len(changes) >= 3
    assert all(b - a >= 0.3 - 1e-9 for a, b in itertools.pairwise(times))


def test_a_change_undone_within_the_interval_is_not_reported() -> None:
    policy = FLIPPY
    detector = SpeakingDetector(policy)
    assert detector.update(LOUD, 0.0) is True
    assert detector.update(QUIET, 0.02) is None  # too soon to report the stop
    assert detector.update(LOUD, 0.04) is None  # and now there is nothing to report
    assert detector.update(LOUD, 0.5) is None
    assert detector.update(QUIET, 0.6) is False
