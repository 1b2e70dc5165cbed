"""Comparing read models rebuilt from the log with the live ones, field by field. Pure.

A `Snapshot` is a team's read models keyed for comparison: its position (seq), each member's
JSON by user id and each call's JSON by call id, exactly the bodies the rm_* tables store.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from streams.projection import TeamView

_WHOLE = "(whole)"  # the field of a difference where one side lacks the entity altogether


class _Absent:
    """What a side without the entity or field holds (JSON null is a value, not absence)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class Snapshot(NamedTuple):
    """A team's read models: position, members by user id, calls by call id."""

    seq: int
    members: dict[str, dict[str, Any]]
    calls: dict[str, dict[str, Any]]


EMPTY = Snapshot(0, {}, {})


class Difference(NamedTuple):
    """One field of one entity of a team that the log and the live read model disagree on."""

    team_id: str
    entity: str  # "position", "member <user_id>" or "call <call_id>"
    field: str  # dotted path inside the entity's JSON, or "(whole)"
    log: Any  # ABSENT: the log has no such entity or field
    live: Any

    def __str__(self) -> str:
        return (
            f"team {self.team_id} {self.entity} {self.field}: "
            f"log {_show(self.log)}, live {_show(self.live)}"
        )


def snapshot(view: TeamView) -> Snapshot:
    """A view's read models as plain JSON values (as they come back out of jsonb)."""
    # Through JSON, so tuples and the like compare equal to what the database returns.
    members = orjson.loads(orjson.dumps(view.members))
    calls = orjson.loads(orjson.dumps(view.calls))
    return Snapshot(view.seq, members, calls)


def diff_team(team_id: str, log: Snapshot, live: Snapshot) -> list[Difference]:
    """Every difference between a team's read models from the log and live, in a fixed order."""
    found = []
    if log.seq != live.seq:
        found.append(Difference(team_id, "position", "seq", log.seq, live.seq))
    for kind, log_side, live_side in (
        ("member", log.members, live.members),
        ("call", log.calls, live.calls),
    ):
        for key in sorted(log_side.keys() | live_side.keys()):
            log_body, live_body = log_side.get(key, ABSENT), live_side.get(key, ABSENT)
            found += diff_bodies(team_id, f"{kind} {key}", log_body, live_body)
    return found


def diff_bodies(team_id: str, entity: str, log: Any, live: Any, path: str = "") -> list[Difference]:
    """Differences between two JSON values of an entity: by field inside objects, whole below."""
    if log == live:
        return []
    if isinstance(log, dict) and isinstance(live, dict):
        found = []
        for key in sorted(log.keys() | live.keys()):
            inner = f"{path}.{key}" if path else str(key)
            found += diff_bodies(
                team_id, entity, log.get(key, ABSENT), live.get(key, ABSENT), inner
            )
        return found
    return [Difference(team_id, entity, path or _WHOLE, log, live)]


def _show(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
