"""Each service process answers /healthz, /readyz and /metrics with real Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from devstack.server import free_port
from tests.stack import ChorusStack

SERVICES = ("commands", "queries", "media", "worker")


@pytest.mark.parametrize("service", SERVICES)
def test_service_is_healthy_ready_and_measured(service: str, stack: ChorusStack) -> None:
    url = stack.start(service)

    health = httpx.get(f"{url}/healthz", timeout=5)
    ready = httpx.get(f"{url}/readyz", timeout=5)
    metrics = httpx.get(f"{url}/metrics", timeout=5)

    assert health.json() == {"status": "ok", "service": service}
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] and all(ready.json()["checks"].values())
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("service", ("commands", "media"))
def test_readyz_is_503_quickly_when_kafka_is_down(service: str, stack: ChorusStack) -> None:
    stack.kafka = f"127.0.0.1:{free_port()}"  # nothing listens there
    url = stack.start(service)

    started = time.monotonic()
    ready = httpx.get(f"{url}/readyz", timeout=10)
    elapsed = time.monotonic() - started

    assert ready.status_code == 503
    assert ready.json()["checks"]["kafka"] is False
    assert elapsed < 5


def test_queries_stay_ready_and_serve_reads_when_kafka_is_down(stack: ChorusStack) -> None:
    stack.kafka = f"127.0.0.1:{free_port()}"  # nothing listens there
    url = stack.start("queries")

    ready = httpx.get(f"{url}/readyz", timeout=10)
    unauthenticated = httpx.get(f"{url}/v1/teams/{uuid.uuid4()}/presence", timeout=10)

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": True}
    assert unauthenticated.status_code == 401  # answered, not hung on the broker


def test_unknown_route_gets_the_contract_error_body(stack: ChorusStack) -> None:
    url = stack.start("commands")
    response = httpx.get(f"{url}/v1/nothing-here", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
