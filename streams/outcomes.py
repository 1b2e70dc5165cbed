"""Records each command's outcome for the commands service (GET and Prefer: wait)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

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


_COLUMNS = ("command_id", "team_id", "actor", "status", "reason", "position", "command_position")
_TYPES = ("uuid", "uuid", "text", "text", "text", "text", "text")
_ARRAYS = ", ".join(f"CAST(:{c} AS text[])::{t}[]" for c, t in zip(_COLUMNS, _TYPES, strict=True))
# One statement, whatever the batch: each column's values as one array parameter, the events
# as one JSON array (no array quoting of large JSON texts), joined by their ordinal; a plan the
# server prepares once, no SQL built per batch; and the waiters woken for the rows written.
# The commands service may have recorded a command as pending; a decision replaces that, and a
# repeated decision (after a crash) changes nothing, and wakes no one. Rows go in in command id
# order, as the commands service's pending rows do (commands/pending.py): two batches that
# share ids then wait for one another instead of deadlocking (which cost a second each, the
# server's deadlock_timeout, before one of them was aborted). The notification of an outcome
# accepted with no events carries its position: a request waiting for it needs no read.
_RECORD = sa.text(
    f"""
    WITH written AS (
        INSERT INTO {command_outcomes.name} ({", ".join(_COLUMNS)}, events)
        SELECT {", ".join(f"r.{c}" for c in _COLUMNS)}, e.events
        FROM unnest({_ARRAYS}) WITH ORDINALITY AS r({", ".join(_COLUMNS)}, n)
        JOIN jsonb_array_elements(CAST(:events AS jsonb)) WITH ORDINALITY AS e(events, n)
            USING (n)
        ORDER BY r.command_id
        ON CONFLICT (command_id) DO UPDATE SET
            status = excluded.status,
            reason = excluded.reason,
            position = excluded.position,
            events = excluded.events,
            command_position = coalesce(
                excluded.command_position, {command_outcomes.name}.command_position
            )
        WHERE {command_outcomes.name}.status = 'pending'
        RETURNING command_id, status, position, events
    )
    SELECT pg_notify(
        :channel,
        CASE WHEN status = 'accepted' AND events = '[]'::jsonb
            THEN command_id::text || ' ' || position
            ELSE command_id::text
        END
    ) FROM written
    """
)


def record_outcomes(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store outcomes and wake the requests waiting for them: one statement, its own
    transaction (autocommit: one round trip to the server, not BEGIN, it and COMMIT)."""
    if not rows:
        return
    columns: dict[str, Any] = {c: [row[c] for row in rows] for c in _COLUMNS}
    events = orjson.dumps([row["events"] for row in rows]).decode()
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(_RECORD, {**columns, "events": events, "channel": CHANNEL})


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
