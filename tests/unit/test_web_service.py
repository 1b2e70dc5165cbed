"""What every service shares: health, bounded readiness checks and a state owned by the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.cache import VerifiedTokens
from config.settings import Settings
from tests.asgi import serving, started
from web import health
from web.service import ServiceState, StateCheck, build_service, state_of


@dataclass
class FakeState(ServiceState):
    """A service's state with one resource that records its life."""

    log: list[str] = field(default_factory=list)
    hung: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Opener:
    """Opens a FakeState, recording when it opens and closes."""

    log: list[str] = field(default_factory=list)
    opened: FakeState | None = None

    @asynccontextmanager
    async def __call__(
        self, settings: Settings, registry: CollectorRegistry
    ) -> AsyncIterator[FakeState]:
        Counter("fake_opened", "Times the fake state opened", registry=registry).inc()
        self.opened = FakeState(settings, VerifiedTokens(settings.require_secret), self.log)
        self.log.append("opened")
        try:
            yield self.opened
        finally:
            self.log.append("closed")


async def _good(state: FakeState) -> bool:
    return True


async def _failing(state: FakeState) -> bool:
    raise ConnectionRefusedError("the dependency is down")


async def _hanging(state: FakeState) -> bool:
    state.hung.set()
    try:
        await asyncio.Event().wait()
    finally:
        state.cancelled.set()
    return True


async def _which(request: Request) -> Response:
    state = state_of(request, FakeState)
    return JSONResponse({"log": state.log})


def _app(tmp_path: Path, opener: Opener, checks: dict[str, StateCheck[FakeState]]) -> Starlette:
    settings = Settings(data_dir=tmp_path, secret="s")
    return build_service("fake", settings, [Route("/which", _which)], opener, checks)


@pytest.fixture(autouse=True)
def _quick_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "READINESS_TIMEOUT_SECONDS", 0.2)


async def test_healthz_names_the_service(tmp_path: Path) -> None:
    async with started(_app(tmp_path, Opener(), {})) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "fake"}


async def test_ready_when_every_check_passes(tmp_path: Path) -> None:
    async with started(_app(tmp_path, Opener(), {"a": _good, "b": _good})) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"a": True, "b": True}}


async def test_a_failing_and_a_hanging_check_make_the_service_unavailable(
    tmp_path: Path,
) -> None:
    opener = Opener()
    checks: dict[str, StateCheck[FakeState]] = {
        "good": _good,
        "failing": _failing,
        "hanging": _hanging,
    }
    async with started(_app(tmp_path, opener, checks)) as client:
        response = await client.get("/readyz")
        assert opener.opened is not None
        assert opener.opened.hung.is_set()
        assert opener.opened.cancelled.is_set()  # the hung check does not outlive the probe
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"good": True, "failing": False, "hanging": False},
    }


async def test_unavailable_until_the_lifespan_has_opened_the_state(tmp_path: Path) -> None:
    opener = Opener()
    async with serving(_app(tmp_path, opener, {"good": _good})) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"good": False}
    assert opener.log == []


async def test_the_lifespan_opens_the_state_for_handlers_and_closes_it(tmp_path: Path) -> None:
    opener = Opener()
    app = _app(tmp_path, opener, {})
    async with started(app) as client:
        assert (await client.get("/which")).json() == {"log": ["opened"]}
        metrics = (await client.get("/metrics")).text
        assert "fake_opened_total 1.0" in metrics  # the state registers with /metrics
    assert opener.log == ["opened", "closed"]
    assert app.state.service is None


async def test_a_handler_asking_for_another_state_fails_loudly(tmp_path: Path) -> None:
    @dataclass
    class OtherState(ServiceState):
        pass

    async def other(request: Request) -> Response:
        state_of(request, OtherState)
        return Response()

    settings = Settings(data_dir=tmp_path, secret="s")
    app = build_service("fake", settings, [Route("/other", other)], Opener(), {})
    async with started(app) as client:
        with pytest.raises(RuntimeError, match="before its lifespan started"):
            await client.get("/other")
