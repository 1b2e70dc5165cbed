"""`chorus replay state --at T`: the read models as they were at an instant, from the log alone.

The views are folded by the projection the live projector runs (`streams.projection.project`),
so the answer is what the queries service would have served at that instant had it been
caught up. Each team's log is taken up to (not including) its first record past the instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from replay.bounds import Bounds, ReplayError
from replay.progress import progress
from replay.reading import LogReader, Record, team_partition
from schemas.envelope import record_or_none
from streams.projection import TeamView, calls_json, presence_json, project, record_key

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
        self.views: dict[str, TeamView] = {}

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
        view = self.views.get(team_id) or TeamView(team_id=team_id)
        self.views[team_id], _ = project(view, record)

    def feed(self, messages: Sequence[Record]) -> list[int]:
        """Apply a batch from the topic; returns the partitions now past the instant."""
        newly_past = []
        for message in messages:
            value = message.value()
            if value is None or (self._team_key is not None and message.key() != self._team_key):
                continue
            partition = message.partition()
            if partition in self._past:
                continue
            record = record_or_none(value)
            if record is None:
                self._warn(f"partition {partition} offset {message.offset()}: not JSON; skipped")
                continue
            occurred_at = record.get("occurred_at")
            if isinstance(occurred_at, str) and occurred_at > self._stop_after:
                self._past.add(partition)
                newly_past.append(partition)
                continue
            self.add(record)
        return newly_past


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
    fold = StateFold(bounds, warn)
    total = sum(end - start for start, end in plan.values())
    with progress("folding", total) as advance:
        for messages, _ in reader.batches(plan):
            for partition in fold.feed(messages):
                reader.finish(partition)
            advance(len(messages))
    return fold.views
