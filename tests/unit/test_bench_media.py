"""The media benchmark's own arithmetic: on-time accounting, room layout, Janus's private config
(from /etc/janus, which `make setup` installs)."""

from __future__ import annotations

from pathlib import Path

from bench.janus import write_config
from bench.media import layout
from bench.rtc import WRAP, ReceiveLog, on_time

FRAME = 960  # RTP ticks per 20 ms frame at 48 kHz


def stream(arrivals: list[float], first_ts: int = 1234) -> ReceiveLog:
    """Frame k arrives at arrivals[k] (None-free), timestamps one frame apart."""
    log = ReceiveLog()
    for index, arrival in enumerate(arrivals):
        log.add(arrival, (first_ts + index * FRAME) % WRAP)
    return log


def test_a_steady_stream_is_all_on_time() -> None:
    log = stream([10.0 + 0.05 + k * 0.02 for k in range(200)])
    counted = on_time(log, 10.5, 12.5, 0.02)
    assert counted.due == 100
    assert counted.on_time == 100
    assert counted.missing == 0


def test_a_late_frame_and_a_lost_frame_are_not_on_time() -> None:
    arrivals = [10.0 + k * 0.02 for k in range(200)]
    arrivals[60] += 0.045  # later than a 20 ms playout buffer allows, within 60 ms
    del arrivals[80]  # never arrives
    timestamps = [k for k in range(200) if k != 80]
    log = ReceiveLog()
    for arrival, k in zip(arrivals, timestamps, strict=True):
        log.add(arrival, 5000 + k * FRAME)
    strict = on_time(log, 10.5, 12.5, 0.02)
    loose = on_time(log, 10.5, 12.5, 0.06)
    assert (strict.due, strict.on_time, strict.missing) == (100, 98, 1)
    assert (loose.due, loose.on_time, loose.missing) == (100, 99, 1)


def test_timestamps_that_wrap_around_stay_in_order() -> None:
    log = stream([3.0 + k * 0.02 for k in range(100)], first_ts=WRAP - 10 * FRAME)
    assert on_time(log, 3.2, 4.8, 0.02).on_time == 80


def test_a_client_that_received_nothing_has_every_frame_late() -> None:
    counted = on_time(ReceiveLog(), 0.0, 1.0, 0.02)
    assert (counted.due, counted.on_time) == (50, 0)
    assert counted.share == 0.0


def test_rooms_of_five_with_one_or_two_talkers() -> None:
    rooms = layout(12, 5)
    assert [len(room) for room in rooms] == [5, 5, 2]
    assert [sum(tone is not None for tone in room) for room in rooms] == [1, 2, 1]


def test_janus_config_keeps_only_the_audiobridge_and_http_on_loopback(tmp_path: Path) -> None:
    write_config(tmp_path, 18123)
    main = (tmp_path / "janus.jcfg").read_text()
    assert f'configs_folder = "{tmp_path}"' in main
    plugins = main.split("plugins: {", 1)[1].split("}", 1)[0]
    assert "libjanus_videoroom.so" in plugins
    assert "libjanus_audiobridge.so" not in plugins
    transports = main.split("transports: {", 1)[1].split("}", 1)[0]
    assert "libjanus_websockets.so" in transports
    assert "libjanus_http.so" not in transports
    http = (tmp_path / "janus.transport.http.jcfg").read_text()
    assert "port = 18123" in http
    assert 'ip = "127.0.0.1"' in http
