"""Putting the records of many partitions in one order, each team's run once and contiguous.

Pure: no Kafka here. `TeamWindows` decides which records of each team an export keeps (its
time window, a repeated `(team_id, seq)` once); `PartitionMerge` interleaves the partitions.

The order of an export: records sorted by `occurred_at`, ties by `(team_id, seq)`, *except*
that a partition's own order is never changed, so each team's records stay in `seq` order even
where its clock ran backwards. To that end a record's sort time is the latest `occurred_at` its
partition has shown so far (which only grows), and a record leaves the merge only once every
partition still being read has passed its sort time.

Both keep their state in plain public dicts so that the exporter's per-record loop can take
the common case inline (see `TeamWindows.judge` and `PartitionMerge.push` for what it does).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from enum import IntEnum
from operator import itemgetter

from replay.bounds import Bounds

#: Sorts after every time string: "no upper bound" without a None test per record.
END_OF_TIME = "\U0010ffff"


class Verdict(IntEnum):
    """What to do with one record of a team."""

    KEEP = 0
    SKIP = 1  # outside the window
    REPEAT = 2  # a copy of a kept (team_id, seq), identical: written twice after a crash
    DIFFERS = 3  # a copy of a kept (team_id, seq) with other content: report it


class TeamWindows:
    """Which records of each team fall in the bounds: one contiguous run of its log, once.

    Feed a team's records in log order, each with a 64-bit digest of its bytes: a repeated
    `(team_id, seq)` with the same digest is a copy written twice (the deciders re-write a
    record byte for byte), with another a differing record to report.
    """

    def __init__(self, bounds: Bounds) -> None:
        self.since = bounds.since
        self.until = bounds.until or END_OF_TIME
        #: Teams whose window is open: the seq that continues their run.
        self.next_seq: dict[str, int] = {}
        #: One 64-bit digest per kept seq from the team's first kept one: 8 bytes an event.
        self.digests: dict[str, array[int]] = {}
        self._base: dict[str, int] = {}  # seq of digests[team][0]
        self._stopped: set[str] = set()  # teams whose log went past `until`

    def judge(self, team_id: str, seq: int, occurred_at: str, digest: int) -> Verdict:
        """KEEP, SKIP, REPEAT or DIFFERS for this record, given those judged before it.

        The common case, `next_seq.get(team_id) == seq and occurred_at <= until`, is KEEP with
        `digests[team_id].append(digest)` and `next_seq[team_id] = seq + 1`.
        """
        base = self._base.get(team_id)
        if base is not None and seq < base + len(self.digests[team_id]):
            return self._repeat(team_id, seq - base, digest)
        if team_id in self._stopped:
            return Verdict.SKIP
        if occurred_at > self.until:
            self._stopped.add(team_id)  # the rest of the team's log is after `until`
            self.next_seq.pop(team_id, None)
            return Verdict.SKIP
        if base is None:
            if self.since is not None and occurred_at < self.since:
                return Verdict.SKIP
            self._base[team_id] = base = seq
            self.digests[team_id] = array("q")
        digests = self.digests[team_id]
        if seq > base + len(digests):
            # A gap in the log: kept as it is (verify reports it); pad so indices stay seq-based.
            digests.extend([0] * (seq - base - len(digests)))
        digests.append(digest)
        self.next_seq[team_id] = seq + 1
        return Verdict.KEEP

    def _repeat(self, team_id: str, index: int, digest: int) -> Verdict:
        if index < 0:
            return Verdict.SKIP  # a repeat of a record before the window
        digests = self.digests[team_id]
        if digests[index] == 0:  # a seq that was missing arrives late: keep it where it is
            digests[index] = digest
            return Verdict.KEEP
        return Verdict.REPEAT if digests[index] == digest else Verdict.DIFFERS

    def teams(self) -> int:
        """How many teams kept at least one record."""
        return len(self.digests)


_Entry = tuple[str, str, int, bytes]  # (sort time, team_id, seq, payload)
_sort_time = itemgetter(0)


class PartitionMerge:
    """Interleaves partitions by time; `take()` gives the records whose place is now certain.

    With `in_order`, the records are one team's, from one partition and in order already:
    `take()` passes them straight on.
    """

    def __init__(self, partitions: Iterable[int], *, in_order: bool = False) -> None:
        self._open = set(partitions)
        self._in_order = in_order
        #: partition -> the latest occurred_at it has shown (its records' sort time).
        self.latest: dict[int, str] = {}
        #: partition -> its records not yet taken, in its order.
        self.pending: dict[int, list[_Entry]] = {partition: [] for partition in self._open}

    def note(self, partition: int, occurred_at: str) -> None:
        """A record of `partition` was read (kept or not): the partition has reached its time."""
        if occurred_at > self.latest.get(partition, ""):
            self.latest[partition] = occurred_at

    def push(
        self, partition: int, occurred_at: str, team_id: str, seq: int, payload: bytes
    ) -> None:
        """A kept record, in its partition's order."""
        latest = self.latest.get(partition, "")
        if occurred_at > latest:
            self.latest[partition] = latest = occurred_at
        self.pending[partition].append((latest, team_id, seq, payload))

    def close(self, partition: int) -> None:
        """Nothing more comes from `partition`."""
        self._open.discard(partition)

    def take(self) -> list[bytes]:
        """Payloads that no record still to come can precede, in their merged order."""
        if self._in_order:
            return self._take_all()
        frontier: str | None = None
        if self._open:
            if any(partition not in self.latest for partition in self._open):
                return []  # a partition not heard from yet may hold the earliest record
            frontier = min(self.latest[partition] for partition in self._open)
        ready: list[_Entry] = []
        for entries in self.pending.values():
            # An entry at the frontier waits: an open partition may still show that time.
            cut = (
                len(entries) if frontier is None else bisect_left(entries, frontier, key=_sort_time)
            )
            if cut:
                ready.extend(entries[:cut])
                del entries[:cut]
        ready.sort()
        return [entry[3] for entry in ready]

    def _take_all(self) -> list[bytes]:
        ready = [entry[3] for entries in self.pending.values() for entry in entries]
        for entries in self.pending.values():
            entries.clear()
        return ready
