"""The heartbeat benchmark's schedule and how it merges what its load processes measured."""

from __future__ import annotations

from bench.heartbeat_load import Device, DirectSpec, LoadResult, merge, schedule
from bench.heartbeat_teams import Layout, Member, Team, devices_of, layout, online_devices


def spec(devices: list[Device], interval: float, seconds: float) -> DirectSpec:
    return DirectSpec("kafka", "commands", "dsn", devices, 100.0, interval, seconds)


def test_each_device_beats_on_its_phase_and_the_silenced_one_stops_halfway() -> None:
    beating = Device("t", "u", "token", "d1", silenced=False)
    silenced = Device("t", "u", "token", "d0", silenced=True)

    due = schedule(spec([silenced, beating], 10.0, 40.0), [0.0, 5.0])

    assert [(at, d.device_id) for at, d in due] == [
        (100.0, "d0"),
        (105.0, "d1"),
        (110.0, "d0"),
        (115.0, "d1"),
        (125.0, "d1"),
        (135.0, "d1"),
    ]


def test_first_heartbeats_are_one_each_at_once() -> None:
    devices = [Device("t", "u", "token", f"d{i}", silenced=i == 0) for i in range(3)]

    due = schedule(spec(devices, 0.0, 0.0), [0.0] * 3)

    assert [(at, d.device_id) for at, d in due] == [(100.0, "d0"), (100.0, "d1"), (100.0, "d2")]


def test_the_load_processes_figures_add_up() -> None:
    one = LoadResult([1.0], ["a"], 2, {"503": 1}, {"t1": 5.0}, 0)
    two = LoadResult([2.0, 3.0], ["b", "c"], 2, {"503": 1, "TimeoutError": 1}, {"t2": 6.0}, 1)

    merged = merge([one, two])

    assert merged.latencies == [1.0, 2.0, 3.0] and merged.accepted_ids == ["a", "b", "c"]
    assert (merged.sent, merged.late) == (4, 1)
    assert merged.errors == {"503": 2, "TimeoutError": 1}
    assert merged.last_sent == {"t1": 5.0, "t2": 6.0}


def test_the_default_layout_is_one_device_per_member() -> None:
    assert layout(10_000, 50, None) == Layout(teams=50, members=200, devices=1)
    assert layout(10_000, 50, None).total == 10_000


def test_members_given_share_the_devices_out_at_least_one_each() -> None:
    assert layout(10_000, 50, 20) == Layout(teams=50, members=20, devices=10)
    assert layout(10_000, 50, 1) == Layout(teams=50, members=1, devices=200)
    assert layout(100, 10, 50) == Layout(teams=10, members=50, devices=1)
    assert layout(5, 10, None) == Layout(teams=10, members=1, devices=1)


def test_each_device_beats_with_its_members_token_teams_taking_turns() -> None:
    one = Team(
        "o1", "u1", "t1", [Member("u1", "k1", ["d0"]), Member("u2", "k2", ["d0"])], ("u2", "d0")
    )
    two = Team("o3", "u3", "t2", [Member("u3", "k3", ["d0", "d1"])], ("u3", "d1"))

    devices = devices_of([one, two])

    assert [(d.team_id, d.user_id, d.token, d.device_id, d.silenced) for d in devices] == [
        ("t1", "u1", "k1", "d0", False),
        ("t2", "u3", "k3", "d0", False),
        ("t1", "u2", "k2", "d0", True),
        ("t2", "u3", "k3", "d1", True),
    ]


def test_a_device_counts_online_unless_it_shows_offline() -> None:
    def entry(status: str) -> dict[str, str]:
        return {"device_id": "d", "status": status, "last_seen": "2025-01-01T00:00:00.000Z"}

    members = [
        {"user_id": "u1", "devices": [entry("available"), entry("offline")]},
        {"user_id": "u2", "devices": [entry("busy")]},
        {"user_id": "u3", "devices": []},
    ]

    assert online_devices(members) == 2
