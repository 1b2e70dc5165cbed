"""Records each command's outcome for the commands service (GET and Prefer: wait)."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql

from config.faults import NO_FAULTS, FaultInjected, Faults
from db.engines import OUTCOMES_CHANNEL
from db.tables import command_outcomes
from schemas.text import storable
from streams.domain import TeamState
from streams.domain.sealing import CommandHeader
from streams.ports import OutcomesUnavailable

CHANNEL = OUTCOMES_CHANNEL
log = logging.getLogger(__name__)
#: Fault point (config/faults.py): a `fail` here is the database failing to record outcomes.
BEFORE_OUTCOMES_RECORDED = "outcomes.before_record"


def outcomes_of(
    records: list[dict[str, Any]], command_position: str | None = None
) -> list[dict[str, Any]]:
    """One outcome row per command among consecutive records of the log (grouped by cause).

    `command_position` is where the command was appended, when known (one command's records).
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["causation_id"], []).append(record)
    return [outcome_row(group, command_position) for group in groups.values()]


def outcome_row(
    records: list[dict[str, Any]], command_position: str | None = None
) -> dict[str, Any]:
    """The outcome of a decided command: accepted unless a `command.rejected` was recorded."""
    rejected = next((r for r in records if r["type"] == "command.rejected"), None)
    first = records[0]
    return {
        "command_id": first["causation_id"],
        "team_id": first["team_id"],
        "actor": storable(first["actor"]),
        "status": "rejected" if rejected else "accepted",
        "reason": storable(rejected["data"].get("reason")) if rejected else None,
        "position": str(records[-1]["seq"]),
        "command_position": command_position,
        # A command's events as stored text: a NUL they carry would make PostgreSQL refuse
        # the row, and with it every later decision of the partition.
        "events": storable(records),
    }


def lease_outcome(
    command: CommandHeader, state: TeamState, command_position: str | None = None
) -> dict[str, Any]:
    """The outcome of a command accepted with no events (a heartbeat refreshing a lease): its
    position is the team's seq as it was decided."""
    return {
        "command_id": command.command_id,
        "team_id": command.team_id,
        "actor": storable(command.actor),
        "status": "accepted",
        "reason": None,
        "position": str(state.seq),
        "command_position": command_position,
        "events": [],
    }


_statement = postgresql.insert(command_outcomes)
# The commands service may have recorded the command as pending; a decision replaces that,
# and a repeated decision (after a crash) changes nothing. RETURNING makes SQLAlchemy send a
# batch as one multi-row INSERT ("insertmanyvalues") and names the rows it wrote.
_RECORD = _statement.on_conflict_do_update(
    index_elements=["command_id"],
    set_={
        "status": _statement.excluded.status,
        "reason": _statement.excluded.reason,
        "position": _statement.excluded.position,
        "events": _statement.excluded.events,
        "command_position": sa.func.coalesce(
            _statement.excluded.command_position, command_outcomes.c.command_position
        ),
    },
    where=sa.text("command_outcomes.status = 'pending'"),
).returning(command_outcomes.c.command_id)
# One statement wakes the waiters of every outcome written.
_NOTIFY = sa.text("SELECT pg_notify(:channel, id) FROM unnest(CAST(:ids AS text[])) AS id")


def record_outcomes(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store outcomes and wake the requests waiting for them, in one transaction (one INSERT
    for all the rows, one statement for the notifications)."""
    if not rows:
        return
    with engine.begin() as conn:
        written = [str(row.command_id) for row in conn.execute(_RECORD, rows)]
        if written:
            conn.execute(_NOTIFY, {"channel": CHANNEL, "ids": written})


class PostgresOutcomeRecorder:
    """Outcomes in the `command_outcomes` table, waking the requests that wait for them."""

    def __init__(self, engine: Engine, faults: Faults = NO_FAULTS) -> None:
        self._engine = engine
        self._faults = faults

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Store the rows; raises OutcomesUnavailable when the database cannot be reached."""
        try:
            self._faults.point(BEFORE_OUTCOMES_RECORDED)
            record_outcomes(self._engine, rows)
        except (FaultInjected, sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise OutcomesUnavailable(str(exc).splitlines()[0]) from exc
        except sa.exc.DataError:
            # A row the table refuses (a command id that is no UUID, written to the commands
            # topic by another producer) is logged and left out; the others are recorded.
            for row in rows:
                try:
                    record_outcomes(self._engine, [row])
                except sa.exc.DataError as exc:
                    log.error("outcome of command %r not recorded: %s", row["command_id"], exc)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            raise OutcomesUnavailable(str(exc).splitlines()[0]) from exc


class InMemoryOutcomeRecorder:
    """Outcomes in a dict, by command id, kept as the table keeps them (for unit tests)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    def record(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            kept = self.rows.get(row["command_id"])
            if kept is not None and kept["status"] != "pending":
                continue  # a repeated decision (after a crash) changes nothing
            position = row["command_position"] or (kept or {}).get("command_position")
            self.rows[row["command_id"]] = {**row, "command_position": position}
