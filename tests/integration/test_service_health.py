"""Each HTTP service answers /healthz, /readyz and /metrics against the real Kafka and database."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from commands.app import create_app as commands_app
from infra.settings import Settings
from media.app import create_app as media_app
from queries.app import create_app as queries_app

FACTORIES: dict[str, Callable[[Settings], Starlette]] = {
    "commands": commands_app,
    "queries": queries_app,
    "media": media_app,
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("service", sorted(FACTORIES))
def test_service_is_healthy_and_ready(
    service: str, kafka_bootstrap: str, database_url: str
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url)
    with TestClient(FACTORIES[service](settings)) as client:
        assert client.get("/healthz").json() == {"status": "ok", "service": service}
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert all(ready.json()["checks"].values())
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "chorus_http_requests" in metrics.text


@pytest.mark.parametrize("service", sorted(FACTORIES))
def test_readyz_is_503_quickly_when_kafka_is_down(service: str, database_url: str) -> None:
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{_closed_port()}", database_url=database_url)
    with TestClient(FACTORIES[service](settings)) as client:
        started = time.monotonic()
        ready = client.get("/readyz")
        elapsed = time.monotonic() - started
    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"] is False
    assert elapsed < 5


def test_unknown_route_gets_the_contract_error_body(
    kafka_bootstrap: str, database_url: str
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, database_url=database_url)
    with TestClient(commands_app(settings)) as client:
        response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
