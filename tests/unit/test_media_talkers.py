"""Talkers: loud participants get their own encode at once and keep it for a hold time."""

from __future__ import annotations

from media.talkers import TalkerPolicy, TalkerSet

LOUD = -20.0
QUIET = -90.0


def test_a_loud_frame_makes_a_talker_at_once() -> None:
    talkers: TalkerSet[str] = TalkerSet(TalkerPolicy(gate_dbov=-50.0, hold_seconds=1.0))
    assert talkers.update([("a", LOUD), ("b", QUIET)], now=0.0) == {"a"}
    assert "a" in talkers and "b" not in talkers and len(talkers) == 1


def test_a_talker_is_held_through_pauses_so_nobody_flaps() -> None:
    talkers: TalkerSet[str] = TalkerSet(TalkerPolicy(gate_dbov=-50.0, hold_seconds=1.0))
    talkers.update([("a", LOUD)], now=0.0)
    # Speech with pauses shorter than the hold: "a" never leaves.
    for tick in range(1, 200):
        now = tick * 0.02
        level = LOUD if tick % 40 < 20 else QUIET
        assert talkers.update([("a", level)], now=now) == {"a"}
    # Then silence: "a" leaves once the hold after the last loud frame has passed, not before.
    last_loud = 179 * 0.02
    assert talkers.update([("a", QUIET)], now=last_loud + 1.0) == {"a"}
    assert talkers.update([("a", QUIET)], now=last_loud + 1.02) == frozenset()


def test_a_participant_no_longer_heard_leaves_at_once() -> None:
    talkers: TalkerSet[str] = TalkerSet()
    talkers.update([("a", LOUD), ("b", LOUD)], now=0.0)
    assert talkers.update([("b", LOUD)], now=0.02) == {"b"}  # "a" was muted or left
