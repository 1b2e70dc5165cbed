"""`project(view, record)`: the read models after one more record of a team's log.

Total, like the deciders' `evolve`: any record with a team and a `seq` advances the position,
whether or not this code knows its type (a newer type, a newer version, data that breaks its
schema only advance `seq`); an event naming a call the view does not have changes nothing;
text PostgreSQL cannot store (NUL) is projected as U+FFFD (`schemas.text`). A
record at or below the view's `seq` was applied already (a copy written twice after a crash)
and is skipped, so applying a log twice gives what applying it once gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from msgspec.structs import replace

from schemas.events import Event
from schemas.mapper import MAPPER, MapperError
from schemas.text import storable
from streams.projection.delta import delta
from streams.projection.view import Change, TeamView


class UnusableRecord(ValueError):
    """A record without a string `team_id` and a positive integer `seq`: it has no place."""


def record_key(record: Mapping[str, Any]) -> tuple[str, int] | None:
    """`(team_id, seq)` of a record, or None if it has no usable one."""
    team_id, seq = record.get("team_id"), record.get("seq")
    if isinstance(team_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return (team_id, seq) if seq >= 1 else None
    return None


def project(view: TeamView, record: Mapping[str, Any]) -> tuple[TeamView, list[Change]]:
    """The view after `record` (an event envelope as on the topic) and what it changed.

    Raises `UnusableRecord` for a record without a usable `(team_id, seq)` and ValueError
    for one of another team.
    """
    key = record_key(record)
    if key is None:
        raise UnusableRecord(f"no team_id and seq in record {record.get('event_id')!r}")
    team_id, seq = key
    if team_id != view.team_id:
        raise ValueError(f"a record of team {team_id} given to the view of {view.team_id}")
    if seq <= view.seq:
        return view, []
    decoded = event_of(record)
    return apply_event(view, seq, *(decoded or (None, "")))


def event_of(record: Mapping[str, Any]) -> tuple[Event, str] | None:
    """The record's typed event and `occurred_at`; None if it only moves the position."""
    try:
        # Text the tables cannot hold (a NUL written before the edge refused it) is replaced
        # here, so the projector, a rebuild and replay all fold the same storable views.
        recorded = MAPPER.decode_event(storable(record))
    except MapperError:  # unknown type, newer version, broken data: the position still moves
        return None
    return recorded.data, recorded.occurred_at


def apply_event(
    view: TeamView, seq: int, event: Event | None, at: str
) -> tuple[TeamView, list[Change]]:
    """The view after its team's record `seq` (above `view.seq`), decoded already: `event`,
    which occurred at `at`, or None for a record that only moves the position."""
    change = None if event is None else delta(view.team_id, view.calls, event, at)
    if change is None:
        return replace(view, seq=seq), []
    if change.member:
        advanced = replace(view, seq=seq, members={**view.members, change.key: change.value})
    else:
        advanced = replace(view, seq=seq, calls={**view.calls, change.key: change.value})
    return advanced, [Change(seq, change.kind, change.data)]


def fold_views(records: Iterable[Mapping[str, Any]]) -> dict[str, TeamView]:
    """team_id -> view after every record (in log order; teams may be interleaved).

    Records without a usable `(team_id, seq)` are skipped, as the projector skips them.
    """
    views: dict[str, TeamView] = {}
    for record in records:
        key = record_key(record)
        if key is None:
            continue
        view = views.get(key[0]) or TeamView(team_id=key[0])
        views[key[0]], _ = project(view, record)
    return views
