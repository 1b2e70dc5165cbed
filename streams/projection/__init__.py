"""Pure projections of the events into the read models of presence and calls.

    view, changes = project(view, record)     # one record of the log; a repeat changes nothing
    views = fold_views(records)               # team_id -> view, from a whole log
    presence_json(view), calls_json(view, "active"), snapshot_json(view)

No Kafka, database or HTTP here: `streams.projector` runs this on the live topic into
PostgreSQL, `streams.readmodels.rebuild` rebuilds the tables from the log, and the queries
service serves the same JSON shapes.
"""

from schemas.positions import CHANGES_KEPT, CHANGES_TRIM_EVERY, changes_horizon
from streams.projection.project import (
    UnusableRecord,
    apply_event,
    fold_views,
    project,
    record_key,
)
from streams.projection.view import (
    Change,
    TeamView,
    calls_json,
    is_settled,
    position,
    presence_json,
    snapshot_json,
    without_settled_calls,
)

__all__ = [
    "CHANGES_KEPT",
    "CHANGES_TRIM_EVERY",
    "Change",
    "TeamView",
    "UnusableRecord",
    "apply_event",
    "calls_json",
    "changes_horizon",
    "fold_views",
    "is_settled",
    "position",
    "presence_json",
    "project",
    "record_key",
    "snapshot_json",
    "without_settled_calls",
]
