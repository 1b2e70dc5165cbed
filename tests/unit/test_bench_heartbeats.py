"""The heartbeat benchmark's schedule and how it merges what its load processes measured."""

from __future__ import annotations

from bench.heartbeat_load import Device, DirectSpec, LoadResult, schedule
from bench.heartbeats import merge


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
