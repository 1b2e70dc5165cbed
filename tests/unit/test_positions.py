"""Positions clients hand back: parsed strictly; how far back live queries can resume."""

from __future__ import annotations

import pytest

from schemas.positions import CommandPosition, changes_horizon, command_position, parse_position


def test_a_command_position_round_trips() -> None:
    assert parse_position(command_position(3, 1234)) == CommandPosition(3, 1234)


def test_a_team_seq_is_a_position() -> None:
    assert parse_position("42") == 42


@pytest.mark.parametrize(
    "text", ["", "c", "c1", "c1.", "x1.2", "-1", "1.5", "c1.2.3", "\uff11\uff12"]
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_position(text)


def test_recent_changes_are_kept_in_steps() -> None:
    assert [changes_horizon(p) for p in (0, 10_999, 11_000, 25_500)] == [0, 0, 1_000, 15_000]
