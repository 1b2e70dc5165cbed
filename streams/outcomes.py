"""Records each command's outcome for the commands service (GET and Prefer: wait)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

CHANNEL = "command_outcomes"

_outcomes = sa.table(
    "command_outcomes",
    sa.column("command_id"),
    sa.column("team_id"),
    sa.column("actor"),
    sa.column("status"),
    sa.column("reason"),
    sa.column("position"),
    sa.column("events", postgresql.JSONB),
)


def outcomes_of(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One outcome row per command among consecutive records of the log (grouped by cause)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["causation_id"], []).append(record)
    return [outcome_row(group) for group in groups.values()]


def outcome_row(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The outcome of a decided command: accepted unless a `command.rejected` was recorded."""
    rejected = next((r for r in records if r["type"] == "command.rejected"), None)
    first = records[0]
    return {
        "command_id": first["causation_id"],
        "team_id": first["team_id"],
        "actor": first["actor"],
        "status": "rejected" if rejected else "accepted",
        "reason": rejected["data"].get("reason") if rejected else None,
        "position": str(records[-1]["seq"]),
        "events": records,
    }


def record_outcomes(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store outcomes (a repeat after a crash changes nothing) and wake waiting requests."""
    if not rows:
        return
    with engine.begin() as conn:
        statement = postgresql.insert(_outcomes).values(rows)
        # The commands service may have recorded the command as pending; a decision replaces
        # that, and a repeated decision (after a crash) changes nothing.
        statement = statement.on_conflict_do_update(
            index_elements=["command_id"],
            set_={
                "status": statement.excluded.status,
                "reason": statement.excluded.reason,
                "position": statement.excluded.position,
                "events": statement.excluded.events,
            },
            where=sa.text("command_outcomes.status = 'pending'"),
        )
        conn.execute(statement)
        for row in rows:
            conn.execute(sa.select(sa.func.pg_notify(CHANNEL, row["command_id"])))
