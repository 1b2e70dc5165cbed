"""The benchmarks' readings of the machine: how busy its cores were, and what wrk printed."""

from __future__ import annotations

import time

from bench.harness import wrk_figures
from bench.proc import busy_share, machine_ticks


def test_the_busy_share_is_the_ticks_not_idle_over_all_ticks() -> None:
    assert busy_share((1000, 400), (1200, 450)) == 0.75
    assert busy_share((1000, 400), (1000, 400)) == 0.0  # no tick between the readings


def test_a_spinning_process_makes_the_machine_busy() -> None:
    before = machine_ticks()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    after = machine_ticks()

    assert after[0] > before[0] and after[1] >= before[1]
    assert 0.0 < busy_share(before, after) <= 1.0


WRK = """Running 1m test @ http://127.0.0.1:8001/v1/teams/t/presence
  2 threads and 32 connections
  231153 requests in 1.00m, 52.13MB read
  Non-2xx or 3xx responses: 128586
Requests/sec:   3852.56
Transfer/sec:    889.60KB
"""


def test_wrk_figures_count_the_error_answers_apart() -> None:
    run = wrk_figures(WRK)

    assert (run.rate, run.errors) == (3852.56, 128586)
    assert wrk_figures(WRK.replace("  Non-2xx or 3xx responses: 128586\n", "")).errors == 0
