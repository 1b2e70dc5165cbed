"""The browser client's entry point: the page, what it forwards, and where offers may go."""

from __future__ import annotations

import httpx
import pytest

from client.app import create_app
from client.proxy import offer_target
from config.settings import Settings
from devstack.server import free_port

pytestmark = pytest.mark.unit
ROOM = "0d8f5a8e-3c1b-4f57-9d0e-6a2b7c4e1f90"
HOSTS = frozenset({"127.0.0.1"})


@pytest.mark.parametrize(
    "url",
    [
        f"http://127.0.0.1:8002/v1/rooms/{ROOM}/offer",
        f"http://127.0.0.1:8006/v1/rooms/{ROOM}/offer",  # another worker of the node
    ],
)
def test_an_offer_goes_to_a_rooms_offer_path_on_a_media_host(url: str) -> None:
    assert offer_target(url, HOSTS) == url


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        f"http://evil.example:8002/v1/rooms/{ROOM}/offer",
        f"file://127.0.0.1/v1/rooms/{ROOM}/offer",
        "http://127.0.0.1:8000/v1/teams",
        f"http://127.0.0.1:8002/v1/rooms/{ROOM}/offer?x=1",
        f"http://127.0.0.1:8002/v1/rooms/{ROOM}/offer/../../../v1/accounts",
    ],
)
def test_anything_else_is_no_offer_target(url: str | None) -> None:
    assert offer_target(url, HOSTS) is None


def test_the_web_port_is_a_setting() -> None:
    assert Settings.from_env({}).web_port == 8004
    settings = Settings.from_env({"CHORUS_WEB_PORT": "9004"})
    assert settings.web_port == 9004
    assert Settings.from_env(settings.as_env()).web_port == 9004


async def test_the_page_is_served_and_an_unreachable_service_is_a_503() -> None:
    dead = free_port()  # nothing listens there
    app = create_app(Settings(commands_port=dead, queries_port=dead))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://web") as client,
    ):
        page = await client.get("/")
        assert page.status_code == 200
        assert '<script type="module" src="app.js">' in page.text
        script = await client.get("/app.js")
        assert script.headers["content-type"].startswith("text/javascript")
        down = await client.post("/api/commands/v1/sessions", json={})
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "service_unreachable"
        refused = await client.post("/api/offer?url=http://evil.example/x", json={})
        assert refused.status_code == 400
        assert (await client.get("/readyz")).status_code == 503
