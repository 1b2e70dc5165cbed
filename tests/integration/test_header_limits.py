"""Request heads are bounded (count and size) on every service: 431, and memory stays flat."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.stack import ChorusStack

HUGE = 10 * 1024 * 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def send(url: str, headers: list[tuple[str, str]]) -> int:
    try:
        return httpx.get(f"{url}/healthz", headers=headers, timeout=30).status_code
    except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
        return 0  # the server closed the connection while the client was still sending


@pytest.mark.parametrize("service", ["commands", "queries"])
def test_too_many_or_too_large_headers_get_431(stack: ChorusStack, service: str) -> None:
    url = stack.start(service)
    assert send(url, [("x-fine", "y")]) == 200
    assert send(url, [(f"x-h{i}", "v") for i in range(2000)]) == 431
    assert send(url, [("x-big", "v" * 1024 * 1024)]) == 431
    assert send(url, [("authorization", "Bearer " + "t" * 100 * 1024)]) == 431
    assert send(url, [("x-just-over", "v" * 17 * 1024)]) == 431

    child = next(c for c in stack.children if c.name == service)
    assert child.process is not None
    before = rss_kib(child.process.pid)
    codes = [send(url, [("x-huge", "v" * HUGE)]) for _ in range(20)]
    grown = rss_kib(child.process.pid) - before
    assert set(codes) <= {431, 0}, codes
    assert codes.count(431) >= 10, codes  # mostly a clean answer, not a reset
    assert grown < 30 * 1024, f"the {service} process grew by {grown} KiB"
    assert send(url, [("x-fine", "y")]) == 200
