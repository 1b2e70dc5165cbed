"""`chorus replay state --at T`: the read models as they were at an instant, from the log alone.

The views are folded by the projection the live projector runs (`streams.projection.project`),
so the answer is what the queries service would have served at that instant had it been
caught up. Each team's log is taken up to (not including) its first record past the instant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from replay.bounds import Bounds, ReplayError
from replay.parallel import Helper, Report, split
from replay.progress import Advance, progress
from replay.reading import LogReader, Plan, Record, team_partition
from schemas.envelope import record_or_none
from schemas.event_bytes import EventBytes, shapes
from streams.projection import TeamView, calls_json, presence_json, record_key
from streams.projection.fold import TeamFold

Warn = Callable[[str], None]


def team_state(view: TeamView) -> dict[str, Any]:
    """One team at the view's position, in the shapes of the read-model endpoints."""
    presence = presence_json(view)
    return {
        "position": presence["position"],
        "presence": {"members": presence["members"]},
        "calls": calls_json(view)["calls"],
    }


def all_states(views: Mapping[str, TeamView]) -> list[dict[str, Any]]:
    """Every team's state, each with its `team_id`, ordered by team id."""
    return [{"team_id": team_id, **team_state(views[team_id])} for team_id in sorted(views)]


class StateFold:
    """Folds records (fed in log order; teams interleaved) into each team's view at `until`."""

    def __init__(self, bounds: Bounds, warn: Warn) -> None:
        if bounds.until is None:
            raise ValueError("a state needs the instant it is taken at")
        self._until: str = bounds.until
        self._stop_after = bounds.stop_after or self._until
        self._team = bounds.team_id
        self._team_key = None if self._team is None else self._team.encode()
        self._stopped: set[str] = set()  # teams whose log went past the instant
        self._past: set[int] = set()
        self._warn = warn
        self._bytes = EventBytes()
        self._teams: dict[str, TeamFold] = {}

    @property
    def views(self) -> dict[str, TeamView]:
        """team_id -> the team's view as folded so far."""
        return {team_id: team.view() for team_id, team in self._teams.items()}

    def add(self, record: Mapping[str, Any]) -> None:
        """Apply one record if it is of the wanted team(s) and before the instant."""
        key = record_key(record)
        occurred_at = record.get("occurred_at")
        if key is None or not isinstance(occurred_at, str):
            self._warn(f"record {record.get('event_id')!r} has no team, seq or time; skipped")
            return
        team_id = key[0]
        if team_id in self._stopped or (self._team is not None and team_id != self._team):
            return
        if occurred_at > self._until:
            self._stopped.add(team_id)
            return
        team = self._teams.get(team_id)
        if team is None:
            team = self._teams[team_id] = TeamFold(TeamView(team_id=team_id))
        team.add(record)

    def feed(self, messages: Sequence[Record]) -> list[int]:
        """Apply a batch from the topic; returns the partitions now past the instant.

        Records are decoded from their bytes a batch at a time (`schemas.event_bytes`), and
        the common case is taken inline: this loop runs once per record of the log.
        """
        values = [message.value() for message in messages]
        heads, events = self._bytes.decode(values)
        teams, past, newly_past = self._teams, self._past, list[int]()
        stopped, team_key, only = self._stopped, self._team_key, self._team
        until, stop_after = self._until, self._stop_after
        for message, value, head, event, shaped in zip(
            messages, values, heads, events, shapes(heads), strict=True
        ):
            if value is None or (team_key is not None and message.key() != team_key):
                continue
            partition = message.partition()
            if partition in past:
                continue
            if head is None:
                self._feed_one(message, value, newly_past)
                continue
            at, team = head.occurred_at, head.team_id
            if at > stop_after:
                past.add(partition)
                newly_past.append(partition)
                continue
            if team in stopped or (only is not None and team != only):
                continue
            if at > until:
                stopped.add(team)
                continue
            fold = teams.get(team)
            if fold is None:
                fold = teams[team] = TeamFold(TeamView(team_id=team))
            if head.seq > fold.seq:  # else a copy of a record applied already
                fold.apply(head.seq, event if shaped else None, at)
        return newly_past

    def _feed_one(self, message: Record, value: bytes, newly_past: list[int]) -> None:
        """One record the fast path leaves to the plain one (JSON escapes, a broken envelope)."""
        partition = message.partition()
        record = record_or_none(value)
        if record is None:
            self._warn(f"partition {partition} offset {message.offset()}: not JSON; skipped")
            return
        occurred_at = record.get("occurred_at")
        if isinstance(occurred_at, str) and occurred_at > self._stop_after:
            self._past.add(partition)
            newly_past.append(partition)
            return
        self.add(record)


def fold_at(records: Iterable[Mapping[str, Any]], bounds: Bounds, warn: Warn) -> StateFold:
    """The fold of records already at hand (a test, an exported file)."""
    fold = StateFold(bounds, warn)
    for record in records:
        fold.add(record)
    return fold


def state_at(reader: LogReader, bounds: Bounds, warn: Warn) -> dict[str, TeamView]:
    """team_id -> view at `bounds.until`; ReplayError if `--team` has no events by then."""
    partitions = reader.partitions()
    team = bounds.team_id
    chosen = partitions if team is None else [team_partition(team, len(partitions))]
    views = _state_pass(reader, bounds, chosen, warn)
    if team is not None and not views and len(partitions) > 1:
        # Not where murmur2 puts it: the topic may have been written with another partitioner.
        views = _state_pass(reader, bounds, [p for p in partitions if p not in chosen], warn)
    if team is not None and not views:
        raise ReplayError(f"there are no events of team {team} up to {bounds.until}")
    return views


def _state_pass(
    reader: LogReader, bounds: Bounds, partitions: list[int], warn: Warn
) -> dict[str, TeamView]:
    plan = reader.plan(Bounds(team_id=bounds.team_id), partitions)
    total = sum(end - start for start, end in plan.values())
    parts = split(plan)
    with progress("folding", total) as advance:
        if parts is None:
            return _fold(reader, bounds, plan, warn, advance).views
        ours, theirs = parts
        work = functools.partial(_fold_part, bounds)
        helper = Helper.start(work, reader.bootstrap, reader.topic, theirs)
        try:
            fold = _fold(reader, bounds, ours, warn, lambda read: _advance(read, helper, advance))
            views, warnings = helper.result(lambda read, _: advance(read))
        except BaseException:
            helper.stop()
            raise
    for warning in warnings:
        warn(warning)
    mine = fold.views
    if mine.keys() & views.keys():
        # A team in partitions of both parts (written with another partitioner): one pass, then.
        with progress("folding", total) as advance:
            return _fold(reader, bounds, plan, warn, advance).views
    return mine | views


def _advance(read: int, helper: Helper[Any], advance: Advance) -> None:
    advance(read + sum(theirs for theirs, _ in helper.poll()))


def _fold(reader: LogReader, bounds: Bounds, plan: Plan, warn: Warn, advance: Advance) -> StateFold:
    fold = StateFold(bounds, warn)
    for messages, _ in reader.batches(plan):
        for partition in fold.feed(messages):
            reader.finish(partition)
        advance(len(messages))
    return fold


def _fold_part(
    bounds: Bounds, bootstrap: str, topic: str, plan: Plan, report: Report
) -> tuple[dict[str, TeamView], list[str]]:
    """A helper process's part of a fold: its views, and the warnings it had."""
    warnings: list[str] = []
    reader = LogReader(bootstrap, topic)
    try:
        fold = _fold(reader, bounds, plan, warnings.append, lambda read: report(read, None))
        return fold.views, warnings
    finally:
        reader.close()
