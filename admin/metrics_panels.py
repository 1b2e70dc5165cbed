"""What the metrics page shows: per panel, figures over the last hour and day, and their plots."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from admin.auth import operator_route
from admin.metrics_store import WINDOWS, MetricsStore, Window
from admin.metrics_svg import Fold, Line, fold_max, fold_sum, format_value, plot

Figure = Callable[[MetricsStore, float, Window], float | None]  # (store, since, window)


@dataclass(frozen=True)
class Stat:
    label: str
    unit: str  # "", "ms", "/s"
    figure: Figure


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    stats: list[Stat]
    lines: Callable[[MetricsStore, float], list[Line]]
    fold: Fold = fold_max
    note: str = ""

    def figures(self, store: MetricsStore, now: float) -> list[dict[str, Any]]:
        """Each stat over each window, as numbers."""
        return [
            {
                "label": stat.label,
                "unit": stat.unit,
                **{w.name: stat.figure(store, now - w.seconds, w) for w in WINDOWS},
            }
            for stat in self.stats
        ]

    def plot(self, store: MetricsStore, now: float, window: Window) -> Markup:
        since = now - window.seconds
        title = f"{self.title}, last {window.name}"
        return plot(title, self.lines(store, since), since, now, self.fold)


@dataclass
class Shown:
    """A panel as the page renders it."""

    key: str
    title: str
    note: str
    figures: list[dict[str, Any]]
    plots: dict[str, Markup] = field(default_factory=dict)


def _total(name: str) -> Figure:
    return lambda store, since, window: store.total(name, since)


def _peak(name: str) -> Figure:
    return lambda store, since, window: store.peak(name, since)


def _latest(name: str) -> Figure:
    return lambda store, since, window: store.latest(name)


def _counted(prefix: str) -> Figure:
    """A count the sampler takes over each window itself (`<prefix>.hour`, `<prefix>.day`)."""
    return lambda store, since, window: store.latest(f"{prefix}.{window.name}")


def _mean(name: str) -> Figure:
    def mean(store: MetricsStore, since: float, window: Window) -> float | None:
        values = [value for _, value in store.points(name, since)]
        return sum(values) / len(values) if values else None

    return mean


def _quantile_ms(name: str, q: float) -> Figure:
    def figure(store: MetricsStore, since: float, window: Window) -> float | None:
        value = store.quantile(name, since, q)
        return None if value is None else value * 1000

    return figure


def _series(*names: tuple[str, str]) -> Callable[[MetricsStore, float], list[Line]]:
    return lambda store, since: [Line(label, store.points(name, since)) for label, name in names]


def _quantile_lines(name: str) -> Callable[[MetricsStore, float], list[Line]]:
    def lines(store: MetricsStore, since: float) -> list[Line]:
        return [
            Line(label, [(at, v * 1000) for at, v in store.quantile_points(name, since, q)])
            for label, q in (("p50 ms", 0.5), ("p95 ms", 0.95))
        ]

    return lines


def _by_prefix(
    prefix: str, label: Callable[[str], str]
) -> Callable[[MetricsStore, float], list[Line]]:
    def lines(store: MetricsStore, since: float) -> list[Line]:
        return [
            Line(label(name.removeprefix(prefix)), store.points(name, since))
            for name in store.names(prefix)
        ]

    return lines


def _prefix_stats(store: MetricsStore, prefix: str, label: Callable[[str], str]) -> list[Stat]:
    return [
        Stat(f"{label(name.removeprefix(prefix))} now", "", _latest(name))
        for name in store.names(prefix)
    ]


def panels(store: MetricsStore) -> list[Panel]:
    """The panels, in the page's order (per-partition and per-node ones as the store knows them)."""
    return [
        Panel("calls_started", "Calls started", [Stat("started", "", _counted("calls_started"))],
              _series(("started", "calls_started")), fold=fold_sum),
        Panel("calls_active", "Active calls and participants",
              [Stat("active calls now", "", _latest("calls_active")),
               Stat("participants now", "", _latest("call_participants")),
               Stat("most active calls", "", _peak("calls_active"))],
              _series(("calls", "calls_active"), ("participants", "call_participants"))),
        Panel("join_time", "Join time (media tier)",
              [Stat("p50", "ms", _quantile_ms("join_seconds", 0.5)),
               Stat("p95", "ms", _quantile_ms("join_seconds", 0.95))],
              _quantile_lines("join_seconds"), note="offer received to connection connected"),
        Panel("command_rate", "Commands decided",
              [Stat("mean rate", "/s", _mean("commands_per_second")),
               Stat("peak rate", "/s", _peak("commands_per_second"))],
              _series(("per second", "commands_per_second"))),
        Panel("decided_latency", "Decided latency",
              [Stat("p50", "ms", _quantile_ms("decide_seconds", 0.5)),
               Stat("p95", "ms", _quantile_ms("decide_seconds", 0.95))],
              _quantile_lines("decide_seconds"),
              note="a command's arrival at the worker to its events acknowledged"),
        Panel("decider_lag", "Decider lag per partition",
              _prefix_stats(store, "lag.", lambda p: f"partition {p}"),
              _by_prefix("lag.", lambda p: f"p{p}"), note="commands on the topic not yet decided"),
        Panel("sse_clients", "Live-query (SSE) clients",
              [Stat("now", "", _latest("sse_clients")), Stat("most", "", _peak("sse_clients"))],
              _series(("clients", "sse_clients"))),
        Panel("node_rooms", "Rooms per media node",
              _prefix_stats(store, "node_rooms.", lambda n: f"node {n[:8]}"),
              _by_prefix("node_rooms.", lambda n: n[:8])),
        Panel("failures", "Failures",
              [Stat("503 answers", "", _total("http_503")),
               Stat("restarts seen", "", _total("restarts")),
               Stat("failed scrapes", "", _total("scrape_failures"))],
              _series(("503s", "http_503"), ("restarts", "restarts"),
                      ("failed scrapes", "scrape_failures")),
              fold=fold_sum, note="a restart shows as a service's counters going back"),
    ]  # fmt: skip


def shown(store: MetricsStore, now: float) -> list[Shown]:
    """Every panel with its figures and both plots."""
    return [
        Shown(
            panel.key,
            panel.title,
            panel.note,
            panel.figures(store, now),
            {window.name: panel.plot(store, now, window) for window in WINDOWS},
        )
        for panel in panels(store)
    ]


def figure_text(value: float | None, unit: str) -> str:
    """A figure as the page prints it ("-" for none yet)."""
    if value is None:
        return "-"
    return format_value(value) + (f" {unit}" if unit else "")


def metrics_routes(store: MetricsStore) -> list[Route]:
    """`GET /v1/admin/metrics`: every panel's figures over the last hour and day, as numbers."""

    async def get_metrics(request: Request) -> Response:
        now = time.time()
        return JSONResponse(
            {
                "interval_seconds": store.interval,
                "panels": [
                    {"key": panel.key, "title": panel.title, "figures": panel.figures(store, now)}
                    for panel in panels(store)
                ],
            }
        )

    return [operator_route("/v1/admin/metrics", get_metrics, ["GET"])]
