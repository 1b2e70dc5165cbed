"""Liveness, readiness and metrics routes; readiness checks run together, each bounded in time."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette

import web.health
from tests.asgi import client
from web.health import ReadinessCheck, health_routes, run_checks

QUICK_TIMEOUT = 0.2  # seconds; a hanging check must not hold the tests up for long


@pytest.fixture(autouse=True)
def quick_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web.health, "READINESS_TIMEOUT_SECONDS", QUICK_TIMEOUT)


async def up() -> bool:
    return True


async def down() -> bool:
    return False


async def broken() -> bool:
    raise ConnectionRefusedError("nothing listens there")


class Hanging:
    """A check that never answers; remembers whether it was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    async def __call__(self) -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return True


async def test_every_check_answers_a_failing_a_raising_and_a_hanging_one_as_down() -> None:
    hanging = Hanging()
    checks: dict[str, ReadinessCheck] = {
        "kafka": up,
        "database": down,
        "cache": broken,
        "mixer": hanging,
    }

    assert await run_checks(checks) == {
        "kafka": True,
        "database": False,
        "cache": False,
        "mixer": False,
    }
    assert hanging.cancelled  # given up on, not left running


async def test_the_checks_run_at_once() -> None:
    # `first` can only pass while `second` runs: one after the other, it would time out.
    second_started = asyncio.Event()

    async def first() -> bool:
        await second_started.wait()
        return True

    async def second() -> bool:
        second_started.set()
        return True

    assert await run_checks({"first": first, "second": second}) == {"first": True, "second": True}


def app(checks: dict[str, ReadinessCheck], registry: CollectorRegistry | None = None) -> Starlette:
    return Starlette(routes=health_routes("commands", checks, registry or CollectorRegistry()))


async def test_ready_when_every_check_passes() -> None:
    async with client(app({"kafka": up, "database": up})) as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ready", "checks": {"kafka": True, "database": True}}


@pytest.mark.parametrize("failing", [down, broken, Hanging()], ids=["down", "raising", "hanging"])
async def test_unready_is_503_naming_the_check_that_failed(failing: ReadinessCheck) -> None:
    async with client(app({"kafka": failing, "database": up})) as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json() == {"status": "unavailable", "checks": {"kafka": False, "database": True}}


async def test_liveness_needs_no_dependency() -> None:
    async with client(app({"kafka": down})) as http:
        answer = await http.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "service": "commands"}


async def test_metrics_are_the_services_registry_in_prometheus_text() -> None:
    registry = CollectorRegistry()
    Counter("chorus_widgets", "Widgets made", registry=registry).inc(3)
    async with client(app({}, registry)) as http:
        answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert "chorus_widgets_total 3.0" in answer.text.splitlines()
