"""A live-query client for tests: reads one SSE stream in a thread, as a browser would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from schemas.sse import EventParser, ServerEvent


class LiveReader:
    """Collects the events of `GET /v1/teams/{team_id}/live` until stopped."""

    def __init__(
        self, base_url: str, token: str, team_id: str, last_event_id: str | None = None
    ) -> None:
        self.url = f"{base_url}/v1/teams/{team_id}/live"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = last_event_id
        self.events: list[ServerEvent] = []
        self.status: int | None = None
        self.parser = EventParser()
        self.connected = threading.Event()
        self._response: httpx.Response | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> LiveReader:
        self._thread.start()
        assert self.connected.wait(15), "the stream did not open"
        return self

    def _run(self) -> None:
        timeout = httpx.Timeout(10.0, read=None)
        try:
            with (
                httpx.Client(timeout=timeout) as client,
                client.stream("GET", self.url, headers=self.headers) as response,
            ):
                self._response = response
                self.status = response.status_code
                self.connected.set()
                for line in response.iter_lines():
                    self.events.extend(self.parser.feed(line))
        except (httpx.HTTPError, RuntimeError):
            if not self._stopping:
                raise
        finally:
            self.connected.set()

    def stop(self) -> None:
        self._stopping = True
        if self._response is not None:
            self._response.close()
        self._thread.join(10)

    def last_id(self) -> str | None:
        return self.events[-1].id if self.events else None

    def wait_until(
        self, condition: Callable[[list[ServerEvent]], bool], timeout: float = 20
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(list(self.events)):
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met; last events: {self.events[-3:]}")
