"""The server-sent events wire format of live queries: written by the queries service, read by
clients (the tests and benchmarks among them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class ServerEvent:
    event: str
    id: str | None
    data: Any


def encode_event(kind: str, position: int, data: Any) -> bytes:
    """One SSE event: `event:`, `id:` (a position) and one line of JSON `data:`."""
    return b"event: %s\nid: %d\ndata: %s\n\n" % (kind.encode(), position, orjson.dumps(data))


KEEPALIVE = b": keep-alive\n\n"


class EventParser:
    """Turns the lines of an SSE stream into events; comments are counted, not returned."""

    def __init__(self) -> None:
        self._event = "message"
        self._id: str | None = None
        self._data: list[str] = []
        self.comments = 0

    def feed(self, line: str) -> Iterator[ServerEvent]:
        if line == "":
            if self._data:
                yield ServerEvent(self._event, self._id, orjson.loads("\n".join(self._data)))
            self._event, self._id, self._data = "message", None, []
            return
        if line.startswith(":"):
            self.comments += 1
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        elif name == "data":
            self._data.append(value)
