"""A Chorus stack of real processes for tests: worker and services against the session's Kafka."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.processes import ServiceStack


@dataclass
class ChorusStack(ServiceStack):
    """Processes of one test's stack, sharing its topics, database and secret."""

    partitions: int = 3
    presence_ttl: float = 30.0
    clients: list[Client] = field(default_factory=list)

    def client(self, base_url: str) -> Client:
        """A client the stack closes when it stops."""
        client = Client(base_url)
        self.clients.append(client)
        return client

    def more_env(self) -> dict[str, str]:
        # One process per media node: a test starts each node on a free port of its own.
        return {"CHORUS_PRESENCE_TTL": str(self.presence_ttl), "CHORUS_MEDIA_WORKERS": "1"}

    def wait_worker_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return
            time.sleep(0.2)
        raise AssertionError("worker not ready")

    def stop_all(self) -> None:
        for client in self.clients:
            client.http.close()
        self.clients.clear()
        self.stop_children()


@contextmanager
def running(stack: ChorusStack) -> Iterator[ChorusStack]:
    try:
        yield stack
    finally:
        stack.stop_all()


class Client:
    """A member of the public API, as any client would call it."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.token: str | None = None
        self.user_id: str | None = None

    def sign_up(self, name: str) -> Client:
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery"
        created = self.http.post(
            "/v1/accounts", json={"email": email, "password": password, "display_name": name}
        )
        assert created.status_code == 201, created.text
        session = self.http.post("/v1/sessions", json={"email": email, "password": password})
        assert session.status_code == 201, session.text
        self.token = session.json()["token"]
        self.user_id = session.json()["user_id"]
        self.email = email
        return self

    def headers(self, **extra: str) -> dict[str, str]:
        assert self.token is not None
        return {"Authorization": f"Bearer {self.token}", **extra}

    def post(self, path: str, body: Any, **headers: str) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.headers(**headers))

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, headers=self.headers())

    def new_team(self, *members: Client) -> str:
        created = self.post("/v1/teams", {"name": "Team"})
        assert created.status_code == 201, created.text
        team_id = str(created.json()["team_id"])
        for member in members:
            added = self.post(f"/v1/teams/{team_id}/members", {"email": member.email})
            assert added.status_code == 201, added.text
        return team_id
