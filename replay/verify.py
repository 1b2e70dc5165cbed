"""`chorus replay verify`: is the log intact, and do the live read models agree with it?

The chain is checked on each record exactly as it is stored (the hash covers the record as
written, whatever version it has; upcasting is for reading `data`, never for hashing). The
read models are rebuilt with the projection the live projector runs and compared, per team, at
the position the live tables are at. A team whose live read model is behind its log is waited
for, up to a bound (`behind_bound`, 10 s by default): one still behind then fails the check,
named with both positions, since a projector stuck on a team looks just like that. Records the
projector quarantined (the `quarantine` table) are named, and fail the check while any exist.

The operators' audit log (its own topic, one chain: schemas/audit.py) is checked too, when the
whole log is (`check_audit`): seq continuity, each hash, each link.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from replay.bounds import Bounds, ReplayError
from replay.diff import EMPTY, Difference, Snapshot, diff_team, snapshot
from replay.live import read_live, read_positions, read_quarantine
from replay.progress import progress
from replay.reading import LogReader, Record, team_partition
from schemas.audit import AuditChain
from schemas.envelope import ChainProblem, ChainVerifier, record_from_bytes
from streams.projection import TeamView, project, record_key
from streams.readmodels.store import storable

#: How long a live read model may stay behind its log before `verify` fails (seconds).
BEHIND_BOUND_SECONDS = 10.0


@dataclass
class VerifyReport:
    """What a verification found; `ok` when the log is intact and the read models agree."""

    events: int = 0
    teams: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)  # chain and seq, naming the event
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a failure
    behind: dict[str, tuple[int, int]] = field(default_factory=dict)  # team -> (live, log seq)
    quarantined: list[str] = field(default_factory=list)  # records the projector set aside

    @property
    def ok(self) -> bool:
        return not self.problems and not self.differences and not self.quarantined


def describe(problem: ChainProblem, record: Any, where: str) -> str:
    """One line naming the event at fault: its id, team, seq and where it was read."""
    event_id = record.get("event_id") if isinstance(record, dict) else None
    return (
        f"event {event_id or '?'} (team {problem.team_id or '?'}, seq {problem.seq or '?'}, "
        f"{where}): {problem.kind}: {problem.message}"
    )


class ChainCheck:
    """Hash chain and seq continuity of records fed in log order (teams interleaved)."""

    def __init__(self, report: VerifyReport, *, team_id: str | None, partial: bool) -> None:
        self._report = report
        self._team = team_id
        self._verifier = ChainVerifier(partial=partial)

    def add(self, record: dict[str, Any], where: str) -> bool:
        """Check one record; False if it is not of the team asked for (and so not checked)."""
        team = record.get("team_id")
        if self._team is not None and team != self._team:
            return False
        self._report.events += 1
        if isinstance(team, str):
            self._report.teams.add(team)
        for problem in self._verifier.feed(record):
            self._report.problems.append(describe(problem, record, where))
        return True


def verify_lines(lines: Iterable[bytes], team_id: str | None, *, partial: bool) -> VerifyReport:
    """Check an exported JSONL copy offline: chain and seq only (no database)."""
    report = VerifyReport()
    check = ChainCheck(report, team_id=team_id, partial=partial)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = record_from_bytes(line)
        except ValueError as exc:
            report.problems.append(f"line {number}: {exc}")
            continue
        check.add(record, f"line {number}")
    if team_id is not None and report.events == 0:
        raise ReplayError(f"the file holds no events of team {team_id}")
    return report


class LiveCheck:
    """Checks the topic's records and folds each team's views up to its live position."""

    def __init__(self, live: dict[str, Snapshot], team_id: str | None, *, partial: bool) -> None:
        self.report = VerifyReport()
        self._chain = ChainCheck(self.report, team_id=team_id, partial=partial)
        self._team_key = None if team_id is None else team_id.encode()
        self._live = live
        self._views: dict[str, TeamView] = {}
        self._last: dict[str, int] = {}  # team -> highest seq in the log

    def feed(self, messages: Sequence[Record]) -> None:
        """Check and fold one batch of the topic."""
        for message in messages:
            value = message.value()
            if value is None or (self._team_key is not None and message.key() != self._team_key):
                continue
            where = f"partition {message.partition()} offset {message.offset()}"
            try:
                record = record_from_bytes(value)
            except ValueError as exc:
                self.report.problems.append(f"{where}: {exc}")
                continue
            if self._chain.add(record, where):
                self._fold(record)

    def _fold(self, record: dict[str, Any]) -> None:
        key = record_key(record)
        if key is None:
            return  # reported by the chain check; the projector skips it too
        team_id, seq = key
        self._last[team_id] = max(seq, self._last.get(team_id, 0))
        live = self._live.get(team_id)
        if live is not None and seq <= live.seq:  # compared at the live position, no further
            view = self._views.get(team_id) or TeamView(team_id=team_id)
            self._views[team_id], _ = project(view, record)

    def finish(self) -> VerifyReport:
        """Compare every team of the log or the live tables; returns the report."""
        for team_id in sorted(self._last.keys() | self._live.keys()):
            view = self._views.get(team_id)
            log = EMPTY if view is None else snapshot(view)
            live = self._live.get(team_id)
            last = self._last.get(team_id, 0)
            if live is None:
                self.report.notes.append(
                    f"team {team_id}: no live read model (log at seq {last}); not compared"
                )
                if storable(team_id):  # a team the projector keeps: it has not started it
                    self.report.behind[team_id] = (0, last)
                continue
            if live.seq < last:
                self.report.behind[team_id] = (live.seq, last)
                self.report.notes.append(
                    f"team {team_id}: live read model at seq {live.seq}, log at seq {last} "
                    f"(the projector is behind); compared at seq {live.seq}"
                )
            self.report.differences += diff_team(team_id, log, live)
        return self.report


def verify_topic(
    reader: LogReader,
    database_url: str,
    team_id: str | None,
    *,
    behind_bound: float = BEHIND_BOUND_SECONDS,
) -> VerifyReport:
    """Verify the topic's chains and compare its read models with the live ones.

    A team whose live read model is behind the log is waited for, up to `behind_bound`
    seconds, then compared again; one still short of the log seq first seen is a problem.
    """
    report = _verify_once(reader, database_url, team_id)
    if not report.behind:
        return report
    awaited = report.behind
    lagging = _still_behind(database_url, awaited, behind_bound)
    if len(lagging) < len(awaited):
        report = _verify_once(reader, database_url, team_id)
    for team, (live_seq, log_seq) in sorted(lagging.items()):
        report.problems.append(
            f"team {team}: live read model at seq {live_seq}, log at seq {log_seq}: the "
            f"projector stayed behind for more than {behind_bound:g} s"
        )
    return report


def _verify_once(reader: LogReader, database_url: str, team_id: str | None) -> VerifyReport:
    report = _compare(reader, database_url, team_id)
    # A quarantined record is a failure however the tables compare: its event is not in them.
    report.quarantined = read_quarantine(database_url, team_id)
    return report


def _still_behind(
    database_url: str, behind: dict[str, tuple[int, int]], bound: float
) -> dict[str, tuple[int, int]]:
    """The teams whose live position has not reached their log seq within `bound` seconds."""
    deadline = time.monotonic() + bound
    waiting = {team: log_seq for team, (_, log_seq) in behind.items()}
    while True:
        positions = read_positions(database_url, waiting)
        waiting = {team: seq for team, seq in waiting.items() if positions[team] < seq}
        if not waiting or time.monotonic() >= deadline:
            return {team: (positions[team], seq) for team, seq in waiting.items()}
        time.sleep(0.2)


def _compare(reader: LogReader, database_url: str, team_id: str | None) -> VerifyReport:
    # The database first: the log, read afterwards, then holds everything the tables reflect.
    live = read_live(database_url, team_id)
    partitions = reader.partitions()
    chosen = partitions if team_id is None else [team_partition(team_id, len(partitions))]
    report = _verify_pass(reader, live, team_id, chosen)
    if team_id is not None and report.events == 0 and len(partitions) > 1:
        others = [partition for partition in partitions if partition not in chosen]
        report = _verify_pass(reader, live, team_id, others)
    if team_id is not None and report.events == 0 and team_id not in live:
        raise ReplayError(f"there are no events of team {team_id}")
    return report


def _verify_pass(
    reader: LogReader, live: dict[str, Snapshot], team_id: str | None, partitions: list[int]
) -> VerifyReport:
    plan = reader.plan(Bounds(team_id=team_id), partitions)
    # Retention removed the oldest records of some partition: chains start mid-log there.
    partial = any(start > 0 for start, _ in plan.values())
    check = LiveCheck(live, team_id, partial=partial)
    total = sum(end - start for start, end in plan.values())
    with progress("verifying", total) as advance:
        for messages, _ in reader.batches(plan):
            check.feed(messages)
            advance(len(messages))
    report = check.finish()
    if partial:
        report.notes.append("the log's oldest records are gone: chains checked from there")
    return report


def check_audit(bootstrap: str, topic: str, report: VerifyReport) -> None:
    """Add the audit log's chain problems to `report` (a note when there is no audit topic)."""
    reader = LogReader(bootstrap, topic)
    try:
        try:
            partitions = reader.partitions()
        except ReplayError:
            report.notes.append(f"there is no audit topic {topic}: the audit log is not checked")
            return
        plan = reader.plan(Bounds(), partitions)
        chain = AuditChain(partial=any(start > 0 for start, _ in plan.values()))
        for messages, _ in reader.batches(plan):
            for message in messages:
                where = f"audit partition {message.partition()} offset {message.offset()}"
                try:
                    record = record_from_bytes(message.value() or b"")
                except ValueError as exc:
                    report.problems.append(f"{where}: {exc}")
                    continue
                report.problems += [f"{where}: {problem}" for problem in chain.feed(record)]
        report.notes.append(f"audit log: {chain.records} records, chain checked")
    finally:
        reader.close()
