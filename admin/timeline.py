"""A team's event timeline straight from the log, paginated, each event with its chain status.

The team's events are in one partition of the events topic (keyed by team): it is read with the
replay tool's reader (assigned, never a group member, nothing committed), from the partition's
start, because an event's chain status depends on every earlier event of its team. The hash chain
and seq continuity are checked as `chorus replay verify` checks them (`ChainVerifier`). Reading
stops once the page is full and one more event shows there is a next page.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin.auth import operator_route
from admin.state import admin_state
from db.tables import teams
from replay.bounds import Bounds, ReplayError
from replay.reading import LogReader, team_partition
from schemas.envelope import ChainProblem, ChainVerifier, record_from_bytes
from web.errors import Problem
from web.paths import path_uuid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass
class Timeline:
    """One page of a team's events, in log order."""

    team_id: str
    partition: int
    events: list[dict[str, Any]] = field(default_factory=list)
    next_after: int | None = None  # the `after` of the next page; None: this is the last
    partial: bool = False  # retention removed the partition's oldest records

    def body(self) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "partition": self.partition,
            "events": self.events,
            "next_after": self.next_after,
            # Chains are checked from the first record kept when the oldest ones are gone.
            "checked_from": "first_kept_record" if self.partial else "genesis",
        }


def read_timeline(bootstrap: str, topic: str, team_id: str, *, after: int, limit: int) -> Timeline:
    """Events of `team_id` with seq > `after`, at most `limit` (blocking: run it in a thread)."""
    reader = LogReader(bootstrap, topic)
    try:
        partition = team_partition(team_id, len(reader.partitions()))
        plan = reader.plan(Bounds(team_id=team_id), [partition])
        timeline = Timeline(team_id, partition, partial=plan[partition][0] > 0)
        collect = _Collector(timeline, after, limit)
        key = team_id.encode()
        for messages, _ in reader.batches(plan):
            for message in messages:
                if message.key() == key and not collect.add(message.value(), message.offset()):
                    return timeline
        return timeline
    finally:
        reader.close()


class _Collector:
    """Checks each record of the team in order and keeps those of the page."""

    def __init__(self, timeline: Timeline, after: int, limit: int) -> None:
        self._timeline = timeline
        self._after = after
        self._limit = limit
        self._verifier = ChainVerifier(partial=timeline.partial)
        self._shown = after  # the highest seq on the page so far
        self._read = 0  # the highest seq read so far (a malformed record lies after it)

    def add(self, value: bytes | None, offset: int) -> bool:
        """Take one record of the team; False once the page is full and a next one exists."""
        if value is None:
            return True
        try:
            record = record_from_bytes(value)
        except ValueError as exc:
            if self._read < self._after:
                return True  # before the page
            problem = {"kind": "malformed", "message": str(exc)}
            return self._keep({"seq": None, "offset": offset, "chain": "broken"}, [problem])
        problems = self._verifier.feed(record)
        seq = record.get("seq")
        if isinstance(seq, int):
            self._read = max(self._read, seq)
            if seq <= self._after:
                return True
        elif self._read < self._after:
            return True  # a record without a seq, before the page
        if isinstance(seq, int) and seq <= self._shown and not problems:
            return True  # an identical copy written again after a crash: shown once
        return self._keep(_entry(record, offset, problems), [_problem(p) for p in problems])

    def _keep(self, entry: dict[str, Any], problems: list[dict[str, str]]) -> bool:
        events = self._timeline.events
        if len(events) >= self._limit:
            self._timeline.next_after = self._shown
            return False
        entry["problems"] = problems
        events.append(entry)
        if isinstance(entry["seq"], int):
            self._shown = max(self._shown, entry["seq"])
        return True


def _entry(record: dict[str, Any], offset: int, problems: list[ChainProblem]) -> dict[str, Any]:
    return {
        "seq": record.get("seq"),
        "event_id": record.get("event_id"),
        "type": record.get("type"),
        "version": record.get("version"),
        "occurred_at": record.get("occurred_at"),
        "actor": record.get("actor"),
        "causation_id": record.get("causation_id"),
        "data": record.get("data"),
        "offset": offset,
        "hash": record.get("hash"),
        "chain": "broken" if problems else "ok",
    }


def _problem(problem: ChainProblem) -> dict[str, str]:
    return {"kind": problem.kind, "message": problem.message}


def page_query(request: Request) -> tuple[int, int]:
    """`?after=<seq>` (default 0) and `?limit=` (1..500, default 50); 422 otherwise."""
    after = _int_param(request, "after", 0)
    limit = _int_param(request, "limit", DEFAULT_LIMIT)
    if after < 0:
        raise Problem(422, "invalid_query", "after must be a seq (0 or more)")
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(422, "invalid_query", f"limit must be between 1 and {MAX_LIMIT}")
    return after, limit


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise Problem(422, "invalid_query", f"{name} must be a whole number")
    return int(text)


async def team_timeline(request: Request, team_id: str, after: int, limit: int) -> Timeline:
    """The page of `team_id`'s timeline; 404 for a team that does not exist, 503 without Kafka."""
    state = admin_state(request)
    async with state.engine.connect() as conn:
        found = await conn.scalar(sa.select(teams.c.team_id).where(teams.c.team_id == team_id))
    if found is None:
        raise Problem(404, "unknown_team", "no such team")
    settings = state.settings
    if not settings.kafka_bootstrap:
        raise Problem(503, "log_unavailable", "this service was given no Kafka cluster")
    try:
        return await asyncio.to_thread(
            read_timeline,
            settings.kafka_bootstrap,
            settings.topics.events,
            team_id,
            after=after,
            limit=limit,
        )
    except ReplayError as exc:
        raise Problem(503, "log_unavailable", f"the events topic cannot be read: {exc}") from exc


async def get_events(request: Request) -> Response:
    team_id = path_uuid(request, "team_id")
    after, limit = page_query(request)
    timeline = await team_timeline(request, team_id, after, limit)
    return JSONResponse(timeline.body())


routes = [operator_route("/v1/admin/teams/{team_id}/events", get_events, ["GET"])]
