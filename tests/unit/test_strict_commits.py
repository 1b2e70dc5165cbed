"""Offsets are committed only past records every one of which was handled (streams/commits.py)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest
from faust.types import TP

import streams.commits
from streams.app import _Consumer
from streams.commits import HOLE_GRACE_SECONDS, StrictCommits

PARTITION = TP("t.commands", 2)


class FaustConsumer:
    """What the overrides call of Faust's consumer: its seek to the commits of an assignment,
    the assignment and the partitions' first offsets."""

    starts: dict[TP, int] | None = None  # None: the broker does not answer
    _committed_offset: Any

    async def perform_seek(self) -> None:
        self._committed_offset.update(self.commits_read)

    def assignment(self) -> set[TP]:
        return {PARTITION}

    async def earliest_offsets(self, *partitions: TP) -> dict[TP, int]:
        if self.starts is None:
            raise ConnectionError("no broker")
        return {tp: self.starts[tp] for tp in partitions}


class Acks(StrictCommits, FaustConsumer):
    """Faust's consumer bookkeeping, as the overrides see it."""

    def __init__(self, committed: int | None, acked: list[int]) -> None:
        self._acked: Any = defaultdict(list, {PARTITION: list(acked)})
        self._acked_index: Any = defaultdict(set, {PARTITION: set(acked)})
        self._committed_offset: Any = defaultdict(lambda: None)
        self.commits_read = {} if committed is None else {PARTITION: committed}
        self._committed_offset.update(self.commits_read)
        self.sought: list[tuple[TP, int]] = []

    async def seek(self, partition: TP, offset: int) -> None:
        self.sought.append((partition, offset))


def test_the_worker_consumer_commits_strictly() -> None:
    assert _Consumer._new_offset is StrictCommits._new_offset
    assert _Consumer._add_gap is StrictCommits._add_gap
    assert _Consumer.perform_seek is StrictCommits.perform_seek


def test_the_run_from_the_last_commit_is_committed() -> None:
    acks = Acks(committed=5, acked=[7, 5, 6, 9])

    assert acks._new_offset(PARTITION) == 8
    assert acks._acked[PARTITION] == [9]
    assert acks._acked_index[PARTITION] == {9}


def test_a_run_one_past_the_last_commit_is_not_committed() -> None:
    # Faust would commit 8 here: offset 5 was never handled.
    acks = Acks(committed=5, acked=[6, 7])

    assert acks._new_offset(PARTITION) is None
    assert acks._acked[PARTITION] == [6, 7]


def test_before_the_first_commit_the_first_run_is_committed() -> None:
    # (as long as the partition's first offset is unknown: the broker did not say it)
    assert Acks(committed=None, acked=[3, 4])._new_offset(PARTITION) == 5


async def test_a_partition_with_no_commit_starts_at_its_first_offset() -> None:
    # Its first command was dropped in a rebalance: the ones after it are no run to commit.
    acks = Acks(committed=None, acked=[1, 2])
    acks.starts = {PARTITION: 0}

    await acks.perform_seek()

    assert acks._committed_offset[PARTITION] == 0
    assert acks._new_offset(PARTITION) is None
    acks._acked[PARTITION].append(0)
    assert acks._new_offset(PARTITION) == 3


async def test_a_commit_below_the_first_offset_kept_starts_at_that_offset() -> None:
    # Records deleted by retention before they were handled: waiting for them would stall.
    acks = Acks(committed=4, acked=[9, 10])
    acks.starts = {PARTITION: 9}

    await acks.perform_seek()

    assert acks._new_offset(PARTITION) == 11


async def test_a_commit_read_at_assignment_is_kept() -> None:
    acks = Acks(committed=7, acked=[7])
    acks.starts = {PARTITION: 0}

    await acks.perform_seek()

    assert acks._committed_offset[PARTITION] == 7


async def test_first_offsets_the_broker_does_not_give_leave_the_commits_alone() -> None:
    acks = Acks(committed=None, acked=[3, 4])

    await acks.perform_seek()  # acks.starts is None: the lookup fails

    assert acks._new_offset(PARTITION) == 5


async def test_a_jump_in_the_offsets_read_acknowledges_nothing() -> None:
    acks = Acks(committed=5, acked=[5])

    await acks._add_gap(PARTITION, 6, 9)

    assert acks._new_offset(PARTITION) == 6  # not 10


async def test_a_hole_that_stays_has_the_partition_read_again_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(streams.commits.time, "monotonic", lambda: now[0])
    acks = Acks(committed=5, acked=[6, 7])

    assert acks._new_offset(PARTITION) is None
    now[0] += HOLE_GRACE_SECONDS / 2
    assert acks._new_offset(PARTITION) is None
    await asyncio.sleep(0)
    assert acks.sought == []  # a rebalance's reads may still fill it

    now[0] += HOLE_GRACE_SECONDS
    assert acks._new_offset(PARTITION) is None
    await asyncio.sleep(0)
    assert acks.sought == [(PARTITION, 5)]

    acks._acked[PARTITION].append(5)  # read again and handled: the run commits
    assert acks._new_offset(PARTITION) == 8


def test_offsets_acknowledged_below_the_commit_are_dropped_not_taken_for_a_hole() -> None:
    # Acknowledged while the partition was revoked; handed back, its commit is read as 10.
    acks = Acks(committed=10, acked=[8, 9, 10, 11])

    assert acks._new_offset(PARTITION) == 12
    assert acks._acked[PARTITION] == []
    assert acks._acked_index[PARTITION] == set()
