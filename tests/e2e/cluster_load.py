"""A steady stream of commands, sent as a careful client would: each with an Idempotency-Key,
retried with the same key (on another copy of the service) until it is answered 202."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from schemas.positions import CommandPosition, parse_position

#: How long one command may take to be accepted, through every retry, before the test fails.
GIVE_UP_SECONDS = 90.0
DEADLINE = 120.0  # bound of every wait for a condition of the cluster test
RETRY_AFTER_CAP = 1.0
STATUSES = ("available", "busy", "away")


@dataclass(frozen=True)
class Member:
    """A signed-in member of one team."""

    token: str
    user_id: str
    team_id: str


@dataclass(frozen=True)
class Accepted:
    """A command answered 202: the key it was sent with and what the answer said."""

    key: str
    member: Member
    command_id: str
    partition: int
    sent_at: float  # when the attempt that was accepted began (monotonic)
    answered_at: float
    attempts: int


@dataclass
class Tally:
    """What the load saw; mutated under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: list[Accepted] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


class Sender:
    """Sends one command per call, retrying on 503 and broken connections with the same key."""

    def __init__(self, urls: list[str], tally: Tally) -> None:
        self._urls = urls
        self._tally = tally
        self._http = httpx.Client(timeout=10)
        self._turn = itertools.count()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def presence(self, member: Member, device_id: str, status: str) -> Accepted | None:
        """Set a device's presence; the Accepted, or None after a failure it noted."""
        key = f"cluster-{uuid.uuid4()}"
        path = f"/v1/teams/{member.team_id}/presence"
        body = {"status": status, "device_id": device_id}
        headers = {"Authorization": f"Bearer {member.token}", "Idempotency-Key": key}
        unknown: set[str] = set()  # command ids named by `outcome_unknown` answers
        deadline = time.monotonic() + GIVE_UP_SECONDS
        for attempt in itertools.count(1):
            if time.monotonic() > deadline:
                return self._fail(f"{key}: not accepted within {GIVE_UP_SECONDS:.0f} s")
            # Another copy of the service at each attempt, as behind a load balancer.
            url = self._urls[next(self._turn) % len(self._urls)]
            sent_at = time.monotonic()
            try:
                answer = self._http.post(f"{url}{path}", json=body, headers=headers)
            except httpx.TransportError as exc:
                self._count(type(exc).__name__)
                time.sleep(0.2)
                continue
            code = answer.json().get("error", {}).get("code") if answer.status_code >= 400 else ""
            self._count(f"{answer.status_code} {code}".strip())
            if answer.status_code == 503:
                if code == "outcome_unknown":
                    unknown.add(answer.json()["command_id"])
                retry_after = float(answer.headers.get("Retry-After", "1"))
                time.sleep(min(retry_after, RETRY_AFTER_CAP))
                continue
            if answer.status_code != 202:
                return self._fail(f"{key}: {answer.status_code} {answer.text[:200]}")
            command_id = answer.json()["command_id"]
            if unknown - {command_id}:
                return self._fail(f"{key}: 202 for {command_id} after unknown {unknown}")
            position = parse_position(answer.json()["position"])
            assert isinstance(position, CommandPosition), answer.text
            accepted = Accepted(
                key, member, command_id, position.partition, sent_at, time.monotonic(), attempt
            )
            with self._tally.lock:
                self._tally.accepted.append(accepted)
            return accepted
        raise AssertionError("unreachable")

    def _count(self, what: str) -> None:
        with self._tally.lock:
            self._tally.statuses[what] += 1

    def _fail(self, what: str) -> Accepted | None:
        """Note a failure; None, which `presence` returns."""
        with self._tally.lock:
            self._tally.failures.append(what)
        return None


class SteadyLoad:
    """`clients` threads, each setting presence for the members in turn, until stopped.

    A stopped thread finishes the command it is sending (until accepted): a command given up
    after an unknown outcome might be in the log with no 202 to account for it.
    """

    def __init__(self, urls: list[str], members: list[Member], clients: int = 3) -> None:
        self.tally = Tally()
        self._urls = urls
        self._members = members
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load-{n}", daemon=True)
            for n in range(clients)
        ]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(GIVE_UP_SECONDS + 15)

    def accepted(self) -> list[Accepted]:
        with self.tally.lock:
            return list(self.tally.accepted)

    def wait_until(self, condition: str, test: object, timeout: float) -> None:
        """Wait (bounded) until `test(accepted)` holds; fail saying `condition` if it never does."""
        assert callable(test)
        deadline = time.monotonic() + timeout
        while not test(self.accepted()):
            assert not self.tally.failures, self.tally.failures[:5]
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout:.0f} s: {condition}")
            time.sleep(0.05)

    def _run(self, number: int) -> None:
        with Sender(self._urls, self.tally) as sender:
            for turn in itertools.count():
                if self._stop.is_set():
                    return
                member = self._members[(number + turn) % len(self._members)]
                # Few devices per member: the team's state stays small however long the load.
                device = f"device-{number}"
                sender.presence(member, device, STATUSES[turn % len(STATUSES)])
