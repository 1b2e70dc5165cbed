"""Reading the services' Prometheus /metrics: which services, and sums over a scrape's samples."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from admin.metrics_store import Buckets
from config.settings import Settings

SCRAPE_TIMEOUT_SECONDS = 2.0

Labels = Mapping[str, str]


@dataclass(frozen=True)
class Target:
    """A service whose /metrics the admin service samples."""

    name: str
    url: str


SUPERVISOR = "supervisor"


def targets(settings: Settings) -> list[Target]:
    """The services `chorus up` runs, where its settings put them."""
    ports = {
        "commands": settings.commands_port,
        "queries": settings.queries_port,
        "media": settings.media_port,
        "worker": settings.worker_port,
        "web": settings.web_port,
        # `chorus up` itself, when it runs the stack: it counts its children's restarts.
        SUPERVISOR: settings.supervisor_port,
    }
    return [Target(name, f"http://{settings.host}:{port}/metrics") for name, port in ports.items()]


class Scrape:
    """One scrape of one service: its samples by name (`_total`, `_bucket`... included)."""

    def __init__(self, text: str) -> None:
        self.samples: dict[str, list[tuple[Labels, float]]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def total(self, name: str, **match: str) -> float | None:
        """The sum of the samples of `name` whose labels include `match`; None if none is."""
        values = [value for labels, value in self.samples.get(name, ()) if _has(labels, match)]
        return sum(values) if values else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """Samples of `name` summed by one label's value."""
        out: dict[str, float] = {}
        for labels, value in self.samples.get(name, ()):
            key = labels.get(label)
            if key is not None:
                out[key] = out.get(key, 0.0) + value
        return out

    def buckets(self, histogram: str) -> Buckets | None:
        """A histogram's cumulative buckets (summed over its other labels), by upper bound."""
        summed = self.by_label(f"{histogram}_bucket", "le")
        if not summed:
            return None
        return tuple(sorted((float(bound), count) for bound, count in summed.items()))

    def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every counter series (`*_total`) by name and labels: a restart sets them back."""
        return {
            (name, tuple(sorted(labels.items()))): value
            for name, samples in self.samples.items()
            if name.endswith("_total")
            for labels, value in samples
        }


def _has(labels: Labels, match: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in match.items())


async def scrape_all(client: httpx.AsyncClient, services: list[Target]) -> dict[str, Scrape | None]:
    """Every service's scrape at once; None for one that did not answer (or not with metrics)."""

    async def one(target: Target) -> Scrape | None:
        try:
            response = await client.get(target.url, timeout=SCRAPE_TIMEOUT_SECONDS)
            response.raise_for_status()
            return Scrape(response.text)
        except (httpx.HTTPError, ValueError):
            return None

    found = await asyncio.gather(*(one(target) for target in services))
    return {target.name: scrape for target, scrape in zip(services, found, strict=True)}
