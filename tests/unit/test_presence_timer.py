"""The presence timer: which teams it finds with a lease run out, and how rarely it looks."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from streams.domain.state import Device, TeamState, UserPresence
from streams.presence_timer import PresenceTimer, presence_timer_interval

TTL = 30.0
TTL_MS = 30_000


def team(**devices: Device) -> TeamState:
    return TeamState(presence={"u1": UserPresence(devices=devices, last_seen_ms=0)})


def online(heard_ms: int) -> Device:
    return Device(status="available", last_seen_ms=0, heard_ms=heard_ms)


class Loaded:
    """The states the timer sees, changed between its looks as deciding would."""

    def __init__(self, **teams: TeamState) -> None:
        self.teams = dict(teams)
        self.looks = 0

    def __call__(self) -> dict[int, dict[str, TeamState]]:
        self.looks += 1
        return {0: self.teams}


def test_a_team_is_found_once_a_lease_ran_out_and_not_before() -> None:
    loaded = Loaded(a=team(d1=online(heard_ms=1_000), d2=online(heard_ms=5_000)))
    timer = PresenceTimer(loaded, TTL)

    assert timer.expired_teams(now_ms=1_000 + TTL_MS) == []
    assert timer.expired_teams(now_ms=1_001 + TTL_MS) == ["a"]


def test_a_team_is_looked_at_again_only_when_its_soonest_lease_may_run_out() -> None:
    state = team(d1=online(heard_ms=1_000))
    loaded = Loaded(a=state)
    timer = PresenceTimer(loaded, TTL)
    timer.expired_teams(now_ms=2_000)
    # A lease that ran out in a state the timer does not look at yet (it cannot happen: leases
    # only move later) shows the look was skipped; at the due time it is looked at.
    loaded.teams["a"] = team(d1=online(heard_ms=0))

    assert timer.expired_teams(now_ms=1_000 + TTL_MS) == []
    assert timer.expired_teams(now_ms=1_001 + TTL_MS) == ["a"]


def test_a_renewed_lease_found_at_the_due_time_moves_the_next_look_later() -> None:
    loaded = Loaded(a=team(d1=online(heard_ms=1_000)))
    timer = PresenceTimer(loaded, TTL)
    timer.expired_teams(now_ms=2_000)
    loaded.teams["a"] = team(d1=online(heard_ms=11_000))  # a heartbeat at 11 s

    assert timer.expired_teams(now_ms=1_001 + TTL_MS) == []
    assert timer.expired_teams(now_ms=11_000 + TTL_MS) == []
    assert timer.expired_teams(now_ms=11_001 + TTL_MS) == ["a"]


def test_a_team_found_expired_is_looked_at_each_time_until_its_expiry_is_decided() -> None:
    loaded = Loaded(a=team(d1=online(heard_ms=0)))
    timer = PresenceTimer(loaded, TTL)

    assert timer.expired_teams(now_ms=TTL_MS + 1) == ["a"]
    assert timer.expired_teams(now_ms=TTL_MS + 2) == ["a"]
    expired = replace(loaded.teams["a"].presence["u1"].devices["d1"], expired=True)
    loaded.teams["a"] = team(d1=expired)
    assert timer.expired_teams(now_ms=TTL_MS + 3) == []


def test_a_restored_team_holds_its_leases_from_when_it_was_loaded() -> None:
    loaded = Loaded(a=replace(team(d1=online(heard_ms=0)), leases_from_ms=50_000))
    timer = PresenceTimer(loaded, TTL)

    assert timer.expired_teams(now_ms=50_000 + TTL_MS) == []
    assert timer.expired_teams(now_ms=50_001 + TTL_MS) == ["a"]


def test_a_team_with_no_device_online_is_never_due() -> None:
    loaded = Loaded(a=team(d1=Device(status="offline", last_seen_ms=0)))
    timer = PresenceTimer(loaded, TTL)

    assert timer.expired_teams(now_ms=10**9) == []


def test_the_presence_timer_looks_twice_a_second_or_more_often_for_a_short_ttl() -> None:
    assert presence_timer_interval(30) == 0.25
    assert presence_timer_interval(0.6) == pytest.approx(0.2)
    assert presence_timer_interval(0.1) == 0.1
