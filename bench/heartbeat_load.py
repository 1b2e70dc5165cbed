"""The heartbeat benchmark's load: devices heartbeating on a fixed schedule, in one process.

`bench/heartbeats.py` runs several of these processes, each with its share of the teams, all
starting their schedule at the same monotonic time (system-wide on Linux). Each sends its
requests with the lean client of bench/http_client.py on uvloop: the load shares the two cores
with the stack it measures, and aiohttp took a third of a core at 1,000 heartbeats a second.
`run_direct` appends the heartbeat commands straight to the commands topic instead, as the
commands service would, and times each from its append to its outcome's NOTIFY: the worker's
share of the path alone.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import psycopg
import uvloop
from confluent_kafka import Producer

from adapters.kafka import producer_config
from bench.http_client import Disconnected, HttpPool, request_bytes
from db.engines import OUTCOMES_CHANNEL
from db.outcomes import outcome_notice
from schemas.clock import format_time
from schemas.commands import Command, RecordHeartbeat
from schemas.mapper import MAPPER

#: A keep-alive connection the server closed as it was reused is retried (a timeout is not).
ATTEMPTS = 3


@dataclass
class Device:
    team_id: str
    user_id: str
    token: str
    device_id: str
    silenced: bool  # stops halfway through the run


@dataclass
class LoadSpec:
    commands: str
    devices: list[Device]
    start_at: float  # time.monotonic() of the first device's first steady heartbeat
    interval: float
    seconds: float
    connections: int
    # --no-wait: heartbeats are sent without `Prefer: wait` (answered 202 once appended), noted
    # in `LoadResult.sent_at` and timed by the parent from their send to their outcome's NOTIFY.
    no_wait: bool = False


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)  # ms, accepted steady heartbeats
    accepted_ids: list[str] = field(default_factory=list)
    sent: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # what went wrong -> how often
    last_sent: dict[str, float] = field(default_factory=dict)  # silenced team -> monotonic
    late: int = 0  # heartbeats sent more than one interval behind their schedule
    cpu: float = 0.0  # CPU seconds of the load process while it ran (run_load only)
    answered: list[float] = field(default_factory=list)  # ms, send -> 202 (--no-wait only)
    sent_at: dict[str, float] = field(default_factory=dict)  # command id -> sent (--no-wait)

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def heartbeat_request(commands: str, device: Device, wait: bool) -> bytes:
    """The device's heartbeat as bytes, the same every time."""
    headers = {"Authorization": f"Bearer {device.token}", "Content-Type": "application/json"}
    if wait:
        headers["Prefer"] = "wait=10"
    url = f"{commands}/v1/teams/{device.team_id}/presence/heartbeat"
    return request_bytes("POST", url, headers, orjson.dumps({"device_id": device.device_id}))


async def heartbeat(
    pool: HttpPool,
    request: bytes,
    result: LoadResult,
    sent: dict[str, float] | None = None,
) -> tuple[float, float] | None:
    """One heartbeat answered once decided: (when it was sent, its latency in ms) if accepted.

    Given `sent`, it is sent without waiting (202 once appended) and noted there by its command
    id with the time it was sent; its latency is the outcome's NOTIFY's, known later.
    """
    for attempt in range(ATTEMPTS):
        started = time.monotonic()
        result.sent += 1
        try:
            status, payload = await pool.send(request)
        except (Disconnected, OSError, TimeoutError) as exc:
            result.error(type(exc).__name__)
            if isinstance(exc, Disconnected) and attempt + 1 < ATTEMPTS:
                continue  # a stale keep-alive connection, not an overloaded server
            return None
        took = (time.monotonic() - started) * 1000
        decided = orjson.loads(payload) if status in (200, 202, 409) else {}
        if sent is not None and status == 202:
            sent[decided["command_id"]] = started
            return started, took
        if status != 200 or decided.get("status") != "accepted":
            result.error(f"{status} {decided.get('status', '')}".strip())
            return None
        result.accepted_ids.append(decided["command_id"])
        return started, took
    return None


async def device_loop(
    pool: HttpPool,
    spec: LoadSpec,
    device: Device,
    phase: float,
    result: LoadResult,
    sent: dict[str, float] | None = None,
) -> None:
    """Heartbeats at start_at + phase + k * interval until the run (or, if silenced, half) ends."""
    stop_at = spec.start_at + (spec.seconds / 2 if device.silenced else spec.seconds)
    due = spec.start_at + phase
    request = heartbeat_request(spec.commands, device, wait=sent is None)
    while due < stop_at:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if time.monotonic() - due > spec.interval:
            result.late += 1
        beat = await heartbeat(pool, request, result, sent)
        if beat is not None:
            if sent is None:
                result.latencies.append(beat[1])
            else:
                result.answered.append(beat[1])
            if device.silenced:  # its lease runs from when it was received: just after this
                result.last_sent[device.team_id] = beat[0]
        due += spec.interval


async def _run(spec: LoadSpec, phases: list[float]) -> LoadResult:
    result = LoadResult()
    pool = HttpPool(spec.commands, spec.connections, timeout=30)
    sent = result.sent_at if spec.no_wait else None
    try:
        pairs = zip(spec.devices, phases, strict=True)
        await asyncio.gather(*(device_loop(pool, spec, d, p, result, sent) for d, p in pairs))
    finally:
        pool.close()
    return result


@contextmanager
def outcomes_heard(dsn: str) -> Iterator[dict[str, float]]:
    """command id -> when its outcome's NOTIFY was heard, while in the block."""
    heard: dict[str, float] = {}
    stop, listening = threading.Event(), threading.Event()
    listener = threading.Thread(target=_listen, args=(dsn, heard, listening, stop))
    listener.start()
    listening.wait(30)
    try:
        yield heard
    finally:
        stop.set()
        listener.join()


def timed(result: LoadResult, sent: dict[str, float], heard: dict[str, float]) -> None:
    """Latencies from each heartbeat's send to its outcome's NOTIFY (those heard)."""
    for command_id, at in sent.items():
        if command_id in heard:
            result.accepted_ids.append(command_id)
            result.latencies.append((heard[command_id] - at) * 1000)
        else:
            result.error("no outcome within 60 s of the last send")


def run_load(spec: LoadSpec, phases: list[float]) -> LoadResult:
    """Run this process's devices (each on its phase of the interval) to the end of the run."""
    began = time.process_time()
    result = uvloop.run(_run(spec, phases))
    result.cpu = time.process_time() - began
    return result


def merge(results: list[LoadResult]) -> LoadResult:
    """What several load processes (or rounds) measured, as one."""
    merged = LoadResult()
    for each in results:
        merged.latencies += each.latencies
        merged.answered += each.answered
        merged.accepted_ids += each.accepted_ids
        merged.sent_at.update(each.sent_at)
        merged.sent += each.sent
        merged.late += each.late
        merged.cpu += each.cpu
        merged.last_sent.update(each.last_sent)
        for what, count in each.errors.items():
            merged.errors[what] = merged.errors.get(what, 0) + count
    return merged


@dataclass
class DirectSpec:
    bootstrap: str
    topic: str  # the commands topic
    dsn: str  # libpq connection string of the database the worker records outcomes in
    devices: list[Device]
    start_at: float
    interval: float
    seconds: float


def run_direct(spec: DirectSpec, phases: list[float]) -> LoadResult:
    """Heartbeat commands appended to the commands topic on the devices' schedule; each timed
    from its append to the NOTIFY of its outcome (blocking: run it in a thread)."""
    result = LoadResult()
    sent: dict[str, float] = {}
    producer = Producer(producer_config(spec.bootstrap))
    with outcomes_heard(spec.dsn) as heard:
        for due, device in schedule(spec, phases):
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > spec.interval:
                result.late += 1
            command_id = str(uuid.uuid4())
            sent[command_id] = time.monotonic()
            if device.silenced:  # its lease runs from when it was received: now
                result.last_sent[device.team_id] = sent[command_id]
            producer.produce(spec.topic, _heartbeat(command_id, device), device.team_id.encode())
            producer.poll(0)
        producer.flush(30)
        deadline = time.monotonic() + 60
        while len(heard) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
    result.sent = len(sent)
    timed(result, sent, heard)
    return result


def schedule(spec: DirectSpec, phases: list[float]) -> list[tuple[float, Device]]:
    """(when, device) of every heartbeat of the run, in time order (one each with no interval)."""
    rounds = max(1, math.ceil(spec.seconds / spec.interval)) if spec.interval else 1
    due = []
    for device, phase in zip(spec.devices, phases, strict=True):
        stop_at = spec.start_at + (spec.seconds / 2 if device.silenced else spec.seconds)
        for k in range(rounds):
            at = spec.start_at + phase + k * spec.interval
            if at < stop_at or k == 0:
                due.append((at, device))
    return sorted(due, key=lambda each: each[0])


def _heartbeat(command_id: str, device: Device) -> bytes:
    return MAPPER.command_to_bytes(
        Command(
            command_id=command_id,
            team_id=device.team_id,
            actor=device.user_id,
            received_at=format_time(datetime.now(UTC)),
            data=RecordHeartbeat(device_id=device.device_id),
        )
    )


def _listen(
    dsn: str, heard: dict[str, float], listening: threading.Event, stop: threading.Event
) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {OUTCOMES_CHANNEL}")
        listening.set()
        while not stop.is_set():
            for notice in conn.notifies(timeout=0.2):
                heard.setdefault(outcome_notice(notice.payload)[0], time.monotonic())
