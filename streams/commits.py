"""Offsets are committed only past records the worker handled, every one of them.

Faust commits the end of the first run of acknowledged offsets, with two shortcuts that can
commit past a record never handed to the agents: a jump in the offsets it reads is taken for a
gap in the log (compacted records, transaction markers) and counted as acknowledged, and a run
that starts one past the last commit is committed as if it started at it. The topics here have
neither compaction nor transactions, so their offsets have no gaps: a jump means records were
skipped (seen after a rebalance under a broker failure: a command accepted, never decided, its
offset committed). Here an offset is committed only when every offset from the last commit up
to it was acknowledged. A hole that stays (records skipped by the fetch, which Faust then drops
as already read) makes the consumer read the partition again from the hole: its records are
handed over again, those already decided are found decided, and the hole's are decided.
A partition with no commit yet starts at the first offset it holds, not at whatever run comes
first: a record appended just before a rebalance and dropped with the fetched records a
rebalance throws away (seen: a partition's first command, never decided, while the commands
after it were) is then a hole like any other.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from typing import Any

from faust.types import TP

log = logging.getLogger(__name__)

#: How long a hole after the last commit may stay before the partition is read again from it: a
#: partition handed back in a rebalance is read again from its commit anyway, within this.
HOLE_GRACE_SECONDS = 2.0
#: How long an assignment waits for the partitions' first offsets (else: the first run counts).
START_LOOKUP_SECONDS = 5.0


class StrictCommits:
    """Overrides for Faust's consumer (`faust.transport.consumer.Consumer`): mixed in first."""

    _acked: Any
    _acked_index: Any
    _committed_offset: Any
    _holes: dict[TP, tuple[int, float]]  # tp -> (the commit it starts at, when first seen)
    _seeks: set[asyncio.Future[None]]  # partitions being read again

    async def perform_seek(self) -> None:
        """Faust's seek to the commits of an assignment, then: a partition with no commit (or
        one below the first offset the partition still holds) starts at its first offset."""
        await super().perform_seek()  # type: ignore[misc]
        consumer: Any = self
        partitions = set(consumer.assignment())
        if not partitions:
            return
        try:
            async with asyncio.timeout(START_LOOKUP_SECONDS):
                starts = await consumer.earliest_offsets(*partitions)
        except Exception as exc:  # the broker is down: commits as before, from the first run
            log.warning("the first offsets of %d partitions are unknown: %s", len(partitions), exc)
            return
        self._take_starts(starts)

    def _take_starts(self, starts: Any) -> None:
        """Take the first offset of each partition (tp -> offset) as its commit, if it has
        none or an older one."""
        for tp, start in starts.items():
            committed = self._committed_offset[tp]
            if start is not None and start >= 0 and (committed is None or committed < start):
                self._committed_offset[tp] = start

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """A jump in the offsets read: not a gap in these topics, so nothing is acknowledged."""
        log.warning(
            "%s: offsets %d to %d were skipped by the fetch; they are not counted as handled",
            tp,
            offset_from,
            offset_to - 1,
        )

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: the end of the run of acknowledged offsets starting at the last
        commit (or the partition's first offset), or None."""
        acked = self._acked[tp]
        if not acked:
            return None
        acked.sort()
        committed = self._committed_offset[tp]
        if committed is not None and acked[0] < committed:
            # Acknowledged while the partition was away (its commit unknown), committed since.
            stale = bisect.bisect_left(acked, committed)
            self._acked_index[tp].difference_update(acked[:stale])
            del acked[:stale]
            if not acked:
                return None
        if committed is not None and acked[0] != committed:
            self._hole(tp, committed)
            return None
        self._holes_seen().pop(tp, None)
        end = 1
        while end < len(acked) and acked[end] == acked[end - 1] + 1:
            end += 1
        handled = acked[:end]
        del acked[:end]
        self._acked_index[tp].difference_update(handled)
        return int(handled[-1]) + 1

    def _hole(self, tp: TP, committed: int) -> None:
        holes = self._holes_seen()
        now = time.monotonic()
        seen = holes.get(tp)
        since = seen[1] if seen is not None and seen[0] == committed else now
        holes[tp] = (committed, since)
        if now - since < HOLE_GRACE_SECONDS:
            return
        log.warning(
            "%s: offset %d was never handled while later ones were; reading the partition again "
            "from it",
            tp,
            committed,
        )
        holes[tp] = (committed, now)  # again after another grace, if still there
        consumer: Any = self  # Faust's consumer, whose `seek` this class leaves alone
        seeking = asyncio.ensure_future(consumer.seek(tp, committed))
        self._seeks.add(seeking)
        seeking.add_done_callback(self._sought)

    def _sought(self, seeking: asyncio.Future[None]) -> None:
        self._seeks.discard(seeking)
        if not seeking.cancelled() and seeking.exception() is not None:
            log.warning("reading a partition again failed: %s", seeking.exception())

    def _holes_seen(self) -> dict[TP, tuple[int, float]]:
        if not hasattr(self, "_holes"):
            self._holes = {}
            self._seeks = set()
        return self._holes
