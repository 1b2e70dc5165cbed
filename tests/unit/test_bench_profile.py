"""Where a py-spy recording's samples went (bench/profile.py), read from its collapsed stacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profile import hot

pytestmark = pytest.mark.unit

ROOT = 'process 10:"python -m bench.replay";thread (0x7f01);main (bench/replay.py:300)'
STACKS = f"""\
{ROOT};feed (replay/state.py:140) 60
{ROOT};feed (replay/state.py:151) 20
{ROOT};feed (replay/state.py:140);decode (schemas/event_bytes.py:120) 15
process 11:"python -m replay.parallel";thread (0x7f02);process (replay/work.py:9) 5
"""


def test_samples_are_counted_by_function_self_and_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "stacks.txt"
    path.write_text(STACKS)

    samples, own, within = hot(path, top=3)

    assert samples == 100
    # A function's lines are one function; process and thread frames are no functions, but a
    # function named `process` is one.
    assert own == [
        ("feed (replay/state.py)", 0.8),
        ("decode (schemas/event_bytes.py)", 0.15),
        ("process (replay/work.py)", 0.05),
    ]
    assert within[:2] == [("main (bench/replay.py)", 0.95), ("feed (replay/state.py)", 0.95)]


def test_an_empty_recording_has_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "stacks.txt"
    path.write_text("")

    assert hot(path) == (0, [], [])


def test_the_samples_of_one_process_are_told_apart_by_its_command_line(tmp_path: Path) -> None:
    path = tmp_path / "stacks.txt"
    path.write_text(STACKS)

    samples, own, _ = hot(path, process="replay.parallel")

    assert samples == 5
    assert own == [("process (replay/work.py)", 1.0)]
