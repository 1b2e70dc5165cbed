"""`chorus replay state --at T`: the read models as they were at an instant, from the log alone.

The views are folded by the projection the live projector runs (`streams.projection.project`),
so the answer is what the queries service would have served at that instant had it been
caught up. Each team's log is taken up to (not including) its first record past the instant.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from replay.bounds import Bounds, ReplayError
from replay.parallel import Helper, Report, split
from replay.progress import Advance, progress
from replay.reading import LogReader, Plan, Record, team_partition
from schemas.envelope import record_or_none
from schemas.event_bytes import EventBytes, EventKeys, decode_keys, shapes
from schemas.events import Event
from streams.projection import TeamView, calls_json, presence_json, record_key
from streams.projection import fold as folding
from streams.projection.delta import MEMBER_EVENTS, PARTICIPANT_EVENTS, UNCHANGING_EVENTS
from streams.projection.fold import LastChanges
from streams.projection.project import event_of

Warn = Callable[[str], None]

_MEMBER = frozenset(event.TYPE for event in MEMBER_EVENTS)
_PARTICIPANT = frozenset(event.TYPE for event in PARTICIPANT_EVENTS)
_UNCHANGING = frozenset(event.TYPE for event in UNCHANGING_EVENTS)
_DEFERRED = _MEMBER | _PARTICIPANT | _UNCHANGING
_value_of = operator.methodcaller("value")


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
        self._known: dict[int, Event | None] = {}  # id(record) -> its event, in `views`
        # type -> (a member's, not a participant's?, its current version) of the events that
        # wait: one of an older version is upcast, and its keys may be another's (decoded at
        # once); a newer one changes nothing.
        versions = self._bytes.versions
        self._waits = {kind: (kind in _MEMBER, versions[kind]) for kind in _MEMBER | _PARTICIPANT}
        self._teams: dict[str, LastChanges[bytes]] = {}

    @property
    def views(self) -> dict[str, TeamView]:
        """team_id -> the team's view as folded so far."""
        # What waits is decoded in one batch for every team, not a batch per member and call.
        pending = [record for team in self._teams.values() for record in team.pending()]
        self._known = dict(zip(map(id, pending), self._decode(pending), strict=True))
        try:
            return {team_id: team.view() for team_id, team in self._teams.items()}
        finally:
            self._known = {}

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
            team = self._teams[team_id] = LastChanges(team_id, self._decode_waiting)
        team.add(record)

    def feed(self, messages: Sequence[Record]) -> list[int]:
        """Apply a batch from the topic; returns the partitions now past the instant.

        Each record is first read for its place and keys only (`decode_keys`); a member's or
        participant's event waits undecoded in its team's `LastChanges`, which decodes only
        those no later event overwrites; the others are decoded a batch at a time
        (`schemas.event_bytes`). This loop runs once per record of the log.
        """
        if self._team_key is not None:  # one team's: the others' are never even decoded
            messages = [message for message in messages if message.key() == self._team_key]
        values = list(map(_value_of, messages))
        keys = decode_keys(values)
        now = self._decode_now(values, keys)
        teams, past, newly_past = self._teams, self._past, list[int]()
        stopped, only = self._stopped, self._team
        until, stop_after, decode = self._until, self._stop_after, self._decode
        waits, member_cap, call_cap = self._waits, folding.MEMBER_WAITING, folding.CALL_WAITING
        for index, key in enumerate(keys):
            if past and messages[index].partition() in past:
                continue
            if key is None:
                if (value := values[index]) is not None:
                    self._feed_one(messages[index], value, newly_past)
                continue
            at, team = key.occurred_at, key.team_id
            if at > until:  # (`stop_after` is `until` or later)
                if at > stop_after:
                    partition = messages[index].partition()
                    past.add(partition)
                    newly_past.append(partition)
                else:
                    stopped.add(team)
                continue
            if team in stopped or (only is not None and team != only):
                continue
            fold = teams.get(team)
            if fold is None:
                fold = teams[team] = LastChanges(team, self._decode_waiting)
            seq = key.seq
            if seq <= fold.seq:
                continue  # a copy of a record applied already
            # `LastChanges.wait_member` and `wait_participant`, inline: most records end here.
            wait = waits.get(key.type)
            if wait is not None and wait[1] == key.version:
                fold.seq = seq
                if wait[0]:  # a member's
                    if (user_id := key.data.user_id) is not None:
                        waiting = fold.members_waiting.get(user_id)
                        if waiting is None:
                            fold.members_waiting[user_id] = [(values[index], at)]
                        else:
                            waiting.append((values[index], at))
                            if len(waiting) > member_cap:
                                fold.settle_member(user_id)
                        continue
                elif (call_id := key.data.call_id) is not None:
                    if (waiting := fold.calls_waiting.get(call_id)) is not None:
                        waiting.append((values[index], at))
                        if len(waiting) > call_cap:
                            fold.settle_call(call_id)
                    continue  # (a call not active: changes nothing)
            elif key.type in _UNCHANGING:
                fold.seq = seq
                continue
            # Applied now: decoded with the batch, or here (a waiting kind without its key).
            fold.apply(seq, now[index] if index in now else decode([values[index]])[0], at)
        return newly_past

    def _decode_now(
        self, values: list[bytes | None], keys: list[EventKeys | None]
    ) -> dict[int, Event | None]:
        """index -> event of the batch's records that `feed` applies at once (none waits)."""
        indexes = [
            index
            for index, key in enumerate(keys)
            if key is not None and key.type not in _DEFERRED  # a key has a value
        ]
        events = self._decode([values[index] or b"" for index in indexes])
        return dict(zip(indexes, events, strict=True))

    def _decode_waiting(self, values: list[bytes]) -> list[Event | None]:
        """`_decode` for the teams' folds: from what `views` decoded already, if it did.

        Those records stay referenced (by the folds) all the while, so their ids are theirs.
        """
        known = self._known
        if not known or not all(id(value) in known for value in values):
            return self._decode(values)
        return [known[id(value)] for value in values]

    def _decode(self, values: list[bytes]) -> list[Event | None]:
        """Each record's event as the plain path has it: None if it only moves the position."""
        heads, events = self._bytes.decode(values)
        out: list[Event | None] = []
        for value, head, event, shaped in zip(values, heads, events, shapes(heads), strict=True):
            if head is not None:
                out.append(event if shaped else None)
            else:  # never for a record `decode_keys` read (same envelope): kept for safety
                record = record_or_none(value)
                found = None if record is None else event_of(record)
                out.append(None if found is None else found[0])
        return out

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
    reader = LogReader(bootstrap, topic, check=False)
    try:
        fold = _fold(reader, bounds, plan, warnings.append, lambda read: report(read, None))
        return fold.views, warnings
    finally:
        reader.close()
