"""`chorus media --workers N`: the spawn plan, and a supervisor that restarts a dead worker."""

from __future__ import annotations

import signal
import sys
import threading
import time

import pytest

from cli.main import build_parser, media_settings
from config.settings import Settings, SettingsError
from media.workers import Supervisor, WorkerSpec, worker_plan


def test_each_worker_is_a_node_of_its_own_on_the_next_port_in_the_same_region() -> None:
    args = build_parser().parse_args(
        ["media", "--node-id", "n1", "--region", "eu", "--workers", "3"]
    )
    settings = media_settings(args, Settings(media_port=9000, host="10.0.0.5"))
    assert settings.media_workers == 3
    plan = worker_plan(settings, settings.media_workers, ["--log-level", "warning"])
    assert [(w.node_id, w.port) for w in plan] == [("n1-0", 9000), ("n1-1", 9001), ("n1-2", 9002)]
    first = plan[0].argv
    assert first[:3] == [sys.executable, "-m", "cli.main"]
    # Each worker runs one process (never a supervisor itself), with its id, region and port.
    worker_args = build_parser().parse_args(first[3:])
    worker = media_settings(worker_args, Settings(media_port=worker_args.port))
    assert worker.media_workers == 1
    assert (worker.media_node(), worker.media_region, worker_args.host) == (
        "n1-0",
        "eu",
        "10.0.0.5",
    )
    assert worker_args.log_level == "warning"


def test_the_default_is_one_worker_per_core_and_a_node_id_follows_host_and_port() -> None:
    assert Settings.from_env({}).media_workers >= 1
    assert Settings.from_env({"CHORUS_MEDIA_WORKERS": "4"}).media_workers == 4
    settings = Settings(media_port=8002)
    (only,) = worker_plan(settings, 1)
    assert only.node_id == f"{settings.media_node()}-0"
    # The other services' ports (the stream worker's 8003, the web page's 8004, admin's 8005)
    # are skipped.
    assert [w.port for w in worker_plan(settings, 3)] == [8002, 8006, 8007]


def test_bad_worker_counts_and_one_public_url_for_many_workers_are_refused() -> None:
    with pytest.raises(SettingsError):
        worker_plan(Settings(), 0)
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        worker_plan(Settings(media_public_url="https://media.example.com"), 2)


def test_a_dead_worker_is_started_again_and_stop_ends_them_all() -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    supervisor = Supervisor([WorkerSpec(f"w{k}", 0, sleeper) for k in range(2)], env={})
    supervisor.start()
    watcher = threading.Thread(target=supervisor.watch, kwargs={"poll": 0.05})
    watcher.start()
    try:
        first = supervisor.processes[0]
        assert first is not None
        first.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while supervisor.processes[0] is first:
            assert time.monotonic() < deadline, "the dead worker was not started again"
            time.sleep(0.05)
        assert supervisor.restarts == 1
    finally:
        supervisor.stop(timeout=5)
        watcher.join(5)
    assert not watcher.is_alive()
    assert all(p is not None and p.poll() is not None for p in supervisor.processes)
