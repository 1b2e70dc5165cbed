"""`chorus replay export`: the events of some time (and team) in log order, to a sink.

Per record the hot loop decodes only the four envelope fields it needs (msgspec, skipping
`data`), and passes the record's bytes on untouched; a sink that needs the whole record
parses it there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
import orjson

from replay.bounds import Bounds, ReplayError
from replay.merge import END_OF_TIME, PartitionMerge, TeamWindows, Verdict
from replay.progress import progress
from replay.reading import LogReader, Record, team_partition
from replay.sinks import Sink
from schemas.envelope import record_from_bytes

Warn = Callable[[str], None]
_MALFORMED_SHOWN = 5  # a broken log would otherwise flood stderr; the count is in the stats


class _Head(msgspec.Struct, gc=False):
    """The envelope fields an export orders and filters by."""

    team_id: str
    seq: int
    occurred_at: str


_decode_head = msgspec.json.Decoder(_Head).decode


@dataclass
class ExportStats:
    """What an export read and wrote."""

    read: int = 0
    kept: int = 0
    repeats: int = 0  # identical copies of a (team_id, seq) skipped
    differing: int = 0  # copies with other content: reported, the first copy kept
    malformed: int = 0  # records without a usable team_id, seq or occurred_at: left out
    teams: int = 0


class Exporter:
    """Routes the messages of one pass: each team's window, merged across partitions, to a sink."""

    def __init__(self, bounds: Bounds, partitions: Sequence[int], sink: Sink, warn: Warn) -> None:
        self._stop_after = bounds.stop_after or END_OF_TIME
        self._team_key = None if bounds.team_id is None else bounds.team_id.encode()
        self._windows = TeamWindows(bounds)
        # One team lives in one partition, in order already: no merge needed.
        self._merge = PartitionMerge(partitions, in_order=self._team_key is not None)
        self._sink = sink
        self._warn = warn
        self._past: set[int] = set()
        self.stats = ExportStats()

    def feed(self, messages: Sequence[Record]) -> list[int]:
        """Take one batch; returns the partitions now past the bounds (read no more of them)."""
        self.stats.read += len(messages)
        # Locals, and the common case inline: this loop runs once per record of the export.
        windows, merge, past, newly_past = self._windows, self._merge, self._past, list[int]()
        next_seq, digests, until = windows.next_seq, windows.digests, windows.until
        team_key, stop_after, kept = self._team_key, self._stop_after, 0
        # A fetch brings runs of one partition: its merge state is held in locals for a run.
        current, sort_time, entries = -1, "", list[tuple[str, str, int, bytes]]()
        for message in messages:
            value = message.value()
            if value is None or (team_key is not None and message.key() != team_key):
                continue
            try:
                head = _decode_head(value)
            except msgspec.DecodeError as exc:
                self._malformed(message, str(exc))
                continue
            at, partition, team, seq = head.occurred_at, message.partition(), head.team_id, head.seq
            if partition != current:
                merge.note(current, sort_time)
                current, entries = partition, merge.pending[partition]
                sort_time = merge.latest.get(partition, "")
            if at > sort_time:
                sort_time = at  # the run's merge.note / merge.push, inline
            if at > stop_after or (past and partition in past):
                self._past_bounds(partition, at, newly_past)
                continue
            # Of the bytes, not of the `hash` field: a copy edited but for its hash differs too.
            digest = hash(value)
            if next_seq.get(team) == seq and at <= until:  # = windows.judge(...) is KEEP
                digests[team].append(digest)
                next_seq[team] = seq + 1
            elif (verdict := windows.judge(team, seq, at, digest)) is not Verdict.KEEP:
                self._count(verdict, head, value)
                continue
            entries.append(
                (sort_time, team, seq, value if b"\n" not in value else _one_line(value))
            )
            kept += 1
        merge.note(current, sort_time)
        self.stats.kept += kept
        self._sink.write(merge.take())
        return newly_past

    def _past_bounds(self, partition: int, at: str, newly_past: list[int]) -> None:
        if at > self._stop_after and partition not in self._past:
            self._past.add(partition)
            newly_past.append(partition)

    def close(self, partitions: list[int]) -> None:
        """These partitions have nothing more to give."""
        for partition in partitions:
            self._merge.close(partition)

    def finish(self) -> ExportStats:
        """Write what the merge still holds; every partition is closed by now."""
        self._sink.write(self._merge.take())
        self.stats.teams = self._windows.teams()
        return self.stats

    def _count(self, verdict: Verdict, head: _Head, value: bytes) -> None:
        if verdict is Verdict.DIFFERS:
            self.stats.differing += 1
            self._warn(
                f"team {head.team_id} seq {head.seq}: event {_event_id(value)} differs from the "
                "earlier record with that seq (the earlier one is exported)"
            )
        elif verdict is Verdict.REPEAT:
            self.stats.repeats += 1

    def _malformed(self, message: Record, reason: str) -> None:
        self.stats.malformed += 1
        if self.stats.malformed <= _MALFORMED_SHOWN:
            where = f"partition {message.partition()} offset {message.offset()}"
            self._warn(f"{where} is not an event record ({reason}); left out")


def _event_id(value: bytes) -> str:
    """The record's event_id, for a message (not decoded in the hot loop: it is rarely needed)."""
    return str(record_from_bytes(value).get("event_id"))


def _one_line(value: bytes) -> bytes:
    """The record on one line: a producer that pretty-printed it gets it compacted."""
    return orjson.dumps(record_from_bytes(value))


def export_log(reader: LogReader, bounds: Bounds, sink: Sink, warn: Warn) -> ExportStats:
    """Export the records in the bounds; ReplayError if `--team` names a team with none."""
    partitions = reader.partitions()
    team = bounds.team_id
    chosen = partitions if team is None else [team_partition(team, len(partitions))]
    stats = _export_pass(reader, bounds, chosen, sink, warn)
    if team is not None and stats.kept == 0 and len(partitions) > 1:
        # Not where murmur2 puts it: the topic may have been written with another partitioner.
        others = [partition for partition in partitions if partition not in chosen]
        stats = _export_pass(reader, bounds, others, sink, warn)
    if team is not None and stats.kept == 0:
        raise ReplayError(f"there are no events {bounds.describe()}")
    return stats


def _export_pass(
    reader: LogReader, bounds: Bounds, partitions: Sequence[int], sink: Sink, warn: Warn
) -> ExportStats:
    plan = reader.plan(bounds, partitions)
    exporter = Exporter(bounds, list(plan), sink, warn)
    exporter.close([p for p, (start, end) in plan.items() if end <= start])
    total = sum(end - start for start, end in plan.values())
    with progress("exporting", total) as advance:
        for messages, ended in reader.batches(plan):
            for partition in exporter.feed(messages):
                reader.finish(partition)
                exporter.close([partition])
            exporter.close(ended)
            advance(len(messages))
    return exporter.finish()
