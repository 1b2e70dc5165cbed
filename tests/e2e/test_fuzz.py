"""Schemathesis against both services' /openapi.json on a real stack: no 5xx but 503.

Cases are generated from each service's OpenAPI document (bodies that fit the schemas and
bodies that break them, odd path and query parameters), sent with a valid token and, most of
the time, the ids of a real team, call and command. Bounded in time: each service gets
FUZZ_SECONDS of sending. Afterwards the log and the read models must still agree.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.stack import ChorusStack, Client

TARGET = 2000  # generated requests per service
FUZZ_SECONDS = 30.0  # of sending, per service
WORKERS = 4
REQUEST_TIMEOUT = 3.0  # `?after=` may wait 10 s for a position that never comes: not a 5xx


def generate(base_url: str, target: int) -> list[tuple[Any, bool]]:
    """Cases of every operation (but the SSE stream), positive and negative, with a flag
    saying whether to send them with the real ids instead of the generated ones."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations() if result.ok() is not None]
    strategies = [
        operation.as_strategy(generation_mode=mode)
        for operation in operations
        if not operation.path.endswith("/live")  # a stream that never ends by itself
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    cases: list[tuple[Any, bool]] = []

    @settings(
        max_examples=target,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies), real_ids=st.integers(0, 4).map(lambda n: n > 0))
    def collect(case: Any, real_ids: bool) -> None:
        cases.append((case, real_ids))

    collect()
    return cases


def send_all(
    base_url: str, cases: list[tuple[Any, bool]], ids: dict[str, str], token: str
) -> tuple[Counter[str], list[str]]:
    """Send the cases for at most FUZZ_SECONDS; the count by status, and the 5xx found."""
    deadline = time.monotonic() + FUZZ_SECONDS
    statuses: Counter[str] = Counter()
    failures: list[str] = []

    def send(item: tuple[Any, bool]) -> None:
        case, real_ids = item
        if time.monotonic() > deadline:
            return
        if real_ids:
            case.path_parameters = {**(case.path_parameters or {}), **ids}
            if case.query and "after" in case.query:
                del case.query["after"]  # a position never reached waits 10 s
        try:
            response = case.call(
                base_url=base_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=REQUEST_TIMEOUT,
            )
        except requests.Timeout:
            statuses["timeout"] += 1
            return
        except requests.ConnectionError:
            statuses["closed"] += 1  # refused by the HTTP parser (odd bytes in the request)
            return
        statuses[str(response.status_code)] += 1
        if response.status_code >= 500 and response.status_code != 503:
            failures.append(
                f"{response.status_code} {case.method} {response.request.url} "
                f"body={case.body!r:.200} -> {response.text[:200]}"
            )

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(send, cases))
    return statuses, failures


def test_schemathesis_finds_no_server_error(stack: ChorusStack) -> None:
    stack.presence_ttl = 3600.0
    stack.wait_worker_ready(stack.start("worker"))
    commands, queries = stack.start("commands"), stack.start("queries")
    alice: Client = stack.client(commands).sign_up("alice")
    team_id = alice.new_team()
    started = alice.post(f"/v1/teams/{team_id}/calls", {"invitees": []}, Prefer="wait=10")
    assert started.status_code == 200, started.text
    ids = {
        "team_id": team_id,
        "call_id": started.json()["call_id"],
        "command_id": started.json()["command_id"],
    }
    assert alice.token is not None
    report = {}
    for name, url in (("commands", commands), ("queries", queries)):
        began = time.monotonic()
        cases = generate(url, TARGET)
        generated = time.monotonic() - began
        statuses, failures = send_all(url, cases, ids, alice.token)
        report[name] = dict(sorted(statuses.items()))
        print(
            f"\n{name}: {len(cases)} cases generated in {generated:.0f} s, "
            f"{sum(statuses.values())} sent in {time.monotonic() - began - generated:.0f} s; "
            f"by status: {report[name]}"
        )
        assert failures == [], "\n".join(failures[:20])
        assert sum(statuses.values()) >= 500, statuses  # the run really exercised the service

    verified = subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", "verify"],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
