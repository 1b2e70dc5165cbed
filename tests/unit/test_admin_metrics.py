"""The admin service's metrics: the store's windows and quantiles, the sampler's folding of
scrapes (rates, 503s, restarts, histograms), the panels and their SVG plots."""

from __future__ import annotations

import re

import pytest

from admin.metrics import Sampler
from admin.metrics_panels import figure_text, panels, shown
from admin.metrics_scrape import SUPERVISOR, Scrape, Target
from admin.metrics_store import (
    HOUR,
    MetricsStore,
    bucket_delta,
    bucket_quantile,
    counter_delta,
)
from admin.metrics_svg import SLOTS, Line, nice_ceiling, plot
from config.settings import Settings

pytestmark = pytest.mark.unit
NOW = 1_800_000_000.0


def exposition(
    *, requests: float, failures: float, decided: float, join: tuple[float, float, float]
) -> str:
    """A service's /metrics text: request counters, decided commands, a join histogram."""
    fast, slow, count = join
    scraped = 'service="commands",method="GET",route="/metrics",status="200"'
    refused = 'service="commands",method="POST",route="/v1/teams",status="503"'
    return f"""# TYPE chorus_http_requests counter
chorus_http_requests_total{{{scraped}}} {requests}
chorus_http_requests_total{{{refused}}} {failures}
# TYPE chorus_commands_decided counter
chorus_commands_decided_total{{outcome="accepted"}} {decided}
# TYPE chorus_media_join_seconds histogram
chorus_media_join_seconds_bucket{{le="0.1"}} {fast}
chorus_media_join_seconds_bucket{{le="0.5"}} {slow}
chorus_media_join_seconds_bucket{{le="+Inf"}} {count}
chorus_media_join_seconds_count {count}
chorus_media_join_seconds_sum 1.0
# TYPE chorus_live_clients gauge
chorus_live_clients 7.0
"""


def one(
    requests: float, failures: float, decided: float, join: tuple[float, float, float] = (0, 0, 0)
) -> dict[str, Scrape | None]:
    """One round of scrapes: the one service's."""
    text = exposition(requests=requests, failures=failures, decided=decided, join=join)
    return {"one": Scrape(text)}


def sampler() -> Sampler:
    return Sampler(Settings(), MetricsStore(10.0), services=[Target("one", "http://x/metrics")])


def test_the_sampler_turns_counters_into_rates_and_counts_503s() -> None:
    taken = sampler()
    taken.record_scrapes(NOW, one(5, 2, 100))
    taken.record_scrapes(NOW + 10, one(6, 5, 150))
    store = taken.store

    assert store.points("commands_per_second", 0) == [(NOW + 10, 5.0)]
    assert [value for _, value in store.points("http_503", 0)] == [0.0, 3.0]
    assert store.total("http_503", 0) == 3.0
    assert store.latest("sse_clients") == 7.0
    assert store.total("restarts", 0) == 0.0


def test_a_counter_going_back_is_a_restart_and_a_silent_service_a_failed_scrape() -> None:
    taken = sampler()
    taken.record_scrapes(NOW, one(50, 4, 9))
    taken.record_scrapes(NOW + 10, {"one": None})
    taken.record_scrapes(NOW + 20, one(1, 1, 2))

    store = taken.store
    assert [value for _, value in store.points("scrape_failures", 0)] == [0.0, 1.0, 0.0]
    assert [value for _, value in store.points("restarts", 0)] == [0.0, 0.0, 1.0]
    # After a restart the new value is what grew since: one more 503, not minus three.
    assert store.total("http_503", 0) == 1.0


def test_chorus_up_counts_the_restarts_when_it_runs_the_stack() -> None:
    def supervised(restarts: float) -> Scrape:
        return Scrape(
            "# TYPE chorus_supervisor_restarts counter\n"
            f'chorus_supervisor_restarts_total{{unit="worker"}} {restarts}\n'
        )

    taken = sampler()
    taken.record_scrapes(NOW, {**one(5, 0, 1), SUPERVISOR: supervised(0)})
    # The worker was restarted twice and no counter of the service went back.
    taken.record_scrapes(NOW + 10, {**one(6, 0, 2), SUPERVISOR: supervised(2)})
    taken.record_scrapes(NOW + 20, {**one(7, 0, 3), SUPERVISOR: None})

    store = taken.store
    assert [value for _, value in store.points("restarts", 0)] == [0.0, 2.0, 0.0]
    # Without `chorus up` there is no supervisor to scrape: not a failure.
    assert store.total("scrape_failures", 0) == 0.0


def test_histograms_give_quantiles_of_what_was_observed_between_samples() -> None:
    taken = sampler()
    taken.record_scrapes(NOW, one(1, 0, 0, (10, 10, 10)))
    taken.record_scrapes(NOW + 10, one(2, 0, 0, (10, 20, 20)))

    store = taken.store
    # The ten joins of the first scrape came before sampling began: only the next ten count,
    # all between 0.1 and 0.5 s.
    p50 = store.quantile("join_seconds", 0, 0.5)
    assert p50 == pytest.approx(0.3)
    assert store.quantile("join_seconds", NOW + 11, 0.5) is None
    assert store.quantile_points("join_seconds", 0, 0.95) == [(NOW + 10, pytest.approx(0.48))]


def test_bucket_helpers() -> None:
    assert bucket_quantile(((0.1, 0.0), (1.0, 4.0), (float("inf"), 4.0)), 0.5) == pytest.approx(
        0.55
    )
    assert bucket_quantile(((0.1, 1.0), (float("inf"), 2.0)), 0.99) == 0.1  # past the last bound
    assert bucket_quantile(((0.1, 0.0),), 0.5) is None
    assert bucket_delta(((1.0, 5.0),), ((1.0, 3.0),)) == ((1.0, 2.0),)
    assert bucket_delta(((1.0, 1.0),), ((1.0, 3.0),)) == ((1.0, 1.0),)  # a reset
    assert (counter_delta(7, None), counter_delta(7, 5), counter_delta(2, 5)) == (0.0, 2.0, 2.0)


def test_the_store_keeps_a_day_and_answers_by_window() -> None:
    store = MetricsStore(interval=60.0, keep=2 * HOUR)
    for minute in range(200):
        store.add("x", NOW + 60 * minute, float(minute))
    assert len(store.points("x", 0)) == 121  # two hours of minutes, and one
    end = NOW + 60 * 199
    assert store.total("x", end - 120) == 197 + 198 + 199
    assert store.peak("x", end - HOUR) == 199 and store.latest("x") == 199
    assert store.peak("missing", 0) is None and store.latest("missing") is None


def test_every_panel_has_figures_for_both_windows_and_two_plots() -> None:
    store = MetricsStore(10.0)
    for second in range(0, 600, 10):
        store.add("calls_active", NOW + second, 2.0)
        store.add("lag.0", NOW + second, 1.0)
        store.add("lag.1", NOW + second, 0.0)
    store.add("calls_started.hour", NOW + 590, 3.0)
    store.add("calls_started.day", NOW + 590, 8.0)
    now = NOW + 600
    seen = {panel.key: panel for panel in shown(store, now)}

    assert list(seen) == [panel.key for panel in panels(store)]
    assert len(seen) == 9
    for panel in seen.values():
        assert set(panel.plots) == {"hour", "day"}
        for svg in panel.plots.values():
            assert svg.startswith("<svg") and svg.endswith("</svg>")
    started = seen["calls_started"].figures[0]
    assert (started["hour"], started["day"]) == (3.0, 8.0)
    lag = {figure["label"]: figure["hour"] for figure in seen["decider_lag"].figures}
    assert lag == {"partition 0 now": 1.0, "partition 1 now": 0.0}
    assert seen["decider_lag"].plots["hour"].count("<polyline") == 2
    assert figure_text(None, "ms") == "-" and figure_text(12.5, "ms") == "12 ms"


def test_a_plot_folds_a_day_into_slots_and_escapes_its_labels() -> None:
    points = [(NOW + 10 * i, float(i % 7)) for i in range(8640)]
    svg = str(plot("<day>", [Line("a<b", points)], NOW, NOW + 86400))

    coordinates = re.search(r'points="([^"]+)"', svg)
    assert coordinates is not None
    assert len(coordinates.group(1).split()) <= SLOTS
    assert "<day>" not in svg and "&lt;day&gt;" in svg
    assert "no samples yet" in str(plot("empty", [Line("a", [])], NOW, NOW + 3600))
    assert [nice_ceiling(v) for v in (0, 0.3, 3, 7, 12, 999)] == [1, 0.5, 5, 10, 20, 1000]
