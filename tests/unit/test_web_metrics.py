"""Request metrics: counted and timed by route template (never the raw path) and status."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.asgi import client
from web.errors import EXCEPTION_HANDLERS, Problem
from web.metrics import RequestMetrics

PRESENCE = "/v1/teams/{team_id}/presence"


async def presence(request: Request) -> Response:
    if request.path_params["team_id"] == "secret":
        raise Problem(403, "not_a_member", "you are not a member of this team")
    return JSONResponse({"members": []})


async def crash(request: Request) -> Response:
    raise RuntimeError("a bug")


def app(registry: CollectorRegistry) -> Starlette:
    return Starlette(
        routes=[
            Route(PRESENCE, presence, methods=["GET"]),
            Route("/crash", crash, methods=["POST"]),
        ],
        middleware=[Middleware(RequestMetrics, registry=registry, service="queries")],
        exception_handlers=EXCEPTION_HANDLERS,
    )


def requests(registry: CollectorRegistry, method: str, route: str, status: str) -> float | None:
    labels = {"service": "queries", "method": method, "route": route, "status": status}
    return registry.get_sample_value("chorus_http_requests_total", labels)


def timed(registry: CollectorRegistry, route: str) -> float | None:
    labels = {"service": "queries", "route": route}
    return registry.get_sample_value("chorus_http_request_seconds_count", labels)


async def test_requests_are_counted_by_route_template_and_status() -> None:
    registry = CollectorRegistry()
    async with client(app(registry)) as http:
        for team in ("team-1", "team-2", "team-3"):
            assert (await http.get(f"/v1/teams/{team}/presence")).status_code == 200
        assert (await http.get("/v1/teams/secret/presence")).status_code == 403

    assert requests(registry, "GET", PRESENCE, "200") == 3
    assert requests(registry, "GET", PRESENCE, "403") == 1
    assert timed(registry, PRESENCE) == 4
    routes = {
        sample.labels["route"]
        for metric in registry.collect()
        for sample in metric.samples
        if "route" in sample.labels
    }
    assert routes == {PRESENCE}  # no team id ever becomes a label


async def test_unmatched_paths_share_one_label() -> None:
    registry = CollectorRegistry()
    async with client(app(registry)) as http:
        for path in ("/nothing", "/v1/teams", "/v1/teams/x/presence/more"):
            assert (await http.get(path)).status_code == 404

    assert requests(registry, "GET", "unmatched", "404") == 3
    assert timed(registry, "unmatched") == 3


async def test_a_request_that_crashes_counts_as_500() -> None:
    registry = CollectorRegistry()
    async with client(app(registry), raise_app_exceptions=False) as http:
        assert (await http.post("/crash")).status_code == 500

    assert requests(registry, "POST", "/crash", "500") == 1
    assert timed(registry, "/crash") == 1


async def test_other_scopes_pass_through_uncounted() -> None:
    registry = CollectorRegistry()
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        pass

    await RequestMetrics(inner, registry, "queries")({"type": "lifespan"}, receive, send)

    assert seen == ["lifespan"]
    assert not [s for m in registry.collect() for s in m.samples if s.name.endswith("_total")]
