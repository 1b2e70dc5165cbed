"""Export ordering: each team's window once, partitions merged by time, repeats skipped."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from replay.bounds import Bounds
from replay.export import Exporter
from replay.merge import PartitionMerge, TeamWindows, Verdict
from schemas.clock import parse_millis
from schemas.envelope import GENESIS_HASH, seal

T = "2026-11-23T10:00:{:02d}.000Z"


class Msg:
    """A message as the reader hands it on."""

    def __init__(self, partition: int, record: dict[str, Any] | bytes, offset: int = 0) -> None:
        self._partition, self._offset = partition, offset
        self._value = record if isinstance(record, bytes) else orjson.dumps(record)
        self._key = None if isinstance(record, bytes) else str(record["team_id"]).encode()

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


def chain(team: str, seconds: list[int]) -> list[dict[str, Any]]:
    """Sealed, chained records of `team`, one at each of these seconds past 10:00."""
    records, prev = [], GENESIS_HASH
    for seq, second in enumerate(seconds, 1):
        record = seal(
            {
                "event_id": f"{team}-e{seq}",
                "type": "call.started",
                "version": 1,
                "team_id": team,
                "seq": seq,
                "occurred_at": T.format(second),
                "actor": "u1",
                "causation_id": f"{team}-c{seq}",
                "data": {"call_id": f"{team}-k{seq}", "started_by": "u1", "invitees": []},
                "prev_hash": prev,
            }
        )
        records.append(record)
        prev = record["hash"]
    return records


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    def write(self, payloads: list[bytes]) -> None:
        self.raw += payloads
        self.records += [orjson.loads(payload) for payload in payloads]

    def close(self) -> None:
        pass


def export(batches: list[list[Msg]], bounds: Bounds | None = None) -> tuple[ListSink, list[str]]:
    """Run an exporter over these batches of partitions 0 and 1: (sink, warnings)."""
    sink, warnings = ListSink(), list[str]()
    bounds = bounds or Bounds()
    exporter = Exporter(bounds, [0, 1], sink, warnings.append)
    for batch in batches:
        exporter.feed(batch)
    exporter.close([0, 1])
    exporter.finish()
    return sink, warnings


def keys(records: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(record["team_id"], record["seq"]) for record in records]


def at(second: int) -> int:
    """Epoch milliseconds of that second past 10:00."""
    return parse_millis(T.format(second))


def test_windows_keep_one_contiguous_run_per_team() -> None:
    windows = TeamWindows(Bounds(since_ms=at(10), until_ms=at(20)))
    verdicts = [windows.judge("a", seq, T.format(s), seq) for seq, s in enumerate([5, 10, 15], 1)]
    assert verdicts == [Verdict.SKIP, Verdict.KEEP, Verdict.KEEP]
    # Past `until` the team stops, even if a later record's clock ran back into the window.
    assert windows.judge("a", 4, T.format(21), 4) is Verdict.SKIP
    assert windows.judge("a", 5, T.format(19), 5) is Verdict.SKIP
    assert windows.next_seq == {} and list(windows.digests["a"]) == [2, 3]


def test_windows_tell_identical_repeats_from_differing_ones() -> None:
    windows = TeamWindows(Bounds())
    assert [windows.judge("a", seq, T.format(seq), 100 + seq) for seq in (1, 2, 3)] == [
        Verdict.KEEP
    ] * 3
    assert windows.judge("a", 2, T.format(2), 102) is Verdict.REPEAT
    assert windows.judge("a", 2, T.format(2), 999) is Verdict.DIFFERS
    assert windows.judge("a", 4, T.format(4), 104) is Verdict.KEEP


def test_windows_keep_a_gap_and_a_late_missing_seq() -> None:
    windows = TeamWindows(Bounds())
    assert windows.judge("a", 1, T.format(1), 11) is Verdict.KEEP
    assert windows.judge("a", 3, T.format(3), 13) is Verdict.KEEP  # seq 2 missing: kept anyway
    assert windows.judge("a", 2, T.format(2), 12) is Verdict.KEEP  # arrives late
    assert windows.judge("a", 2, T.format(2), 12) is Verdict.REPEAT
    assert windows.next_seq["a"] == 4


def test_merge_orders_by_time_then_team_and_seq() -> None:
    merge = PartitionMerge([0, 1])
    merge.push(0, T.format(1), "b", 1, b"b1")
    merge.push(0, T.format(3), "b", 2, b"b2")
    assert merge.take() == []  # partition 1 not heard from: it may hold something earlier
    merge.push(1, T.format(1), "a", 1, b"a1")
    merge.push(1, T.format(2), "a", 2, b"a2")
    assert merge.take() == [b"a1", b"b1"]  # both partitions are past second 1, not past 2
    merge.close(1)
    assert merge.take() == [b"a2"]  # b2 waits: partition 0 may still show second 3
    merge.close(0)
    assert merge.take() == [b"b2"]


def test_merge_never_reorders_a_partition_whose_clock_ran_back() -> None:
    merge = PartitionMerge([0, 1])
    merge.push(0, T.format(5), "a", 1, b"a1")
    merge.push(0, T.format(2), "a", 2, b"a2")  # a clock behind: still after a1
    merge.push(1, T.format(3), "b", 1, b"b1")
    merge.close(0)
    merge.close(1)
    assert merge.take() == [b"b1", b"a1", b"a2"]


def test_an_export_interleaves_teams_by_time_and_keeps_each_in_seq_order() -> None:
    a, b = chain("a", [1, 4, 6, 9]), chain("b", [2, 3, 7, 8])
    first = [Msg(0, r) for r in a[:2]] + [Msg(1, r) for r in b[:3]]
    sink, warnings = export([first, [Msg(0, r) for r in a[2:]], [Msg(1, b[3])]])
    assert keys(sink.records) == [
        ("a", 1), ("b", 1), ("b", 2), ("a", 2), ("a", 3), ("b", 3), ("b", 4), ("a", 4)
    ]  # fmt: skip
    assert sink.records == sorted(a + b, key=lambda r: r["occurred_at"])
    assert warnings == []


def test_an_export_skips_identical_copies_and_reports_differing_ones() -> None:
    a = chain("a", [1, 2, 3])
    altered = {**a[1], "actor": "mallory"}
    sink, warnings = export([[Msg(0, r) for r in [*a, a[1], a[2], altered]]])
    assert keys(sink.records) == [("a", 1), ("a", 2), ("a", 3)]
    assert sink.records[1] == a[1]  # the first copy is the one exported
    assert warnings == [
        "team a seq 2: event a-e2 differs from the earlier record with that seq "
        "(the earlier one is exported)"
    ]


def test_an_export_takes_one_team() -> None:
    a, b = chain("a", [1, 4, 6, 9]), chain("b", [2, 3, 7, 8])
    sink, _ = export([[Msg(0, r) for r in a], [Msg(1, r) for r in b]], Bounds(team_id="b"))
    assert sink.records == b


def test_an_export_takes_the_time_window_of_every_team() -> None:
    a, b = chain("a", [1, 4, 6, 9]), chain("b", [2, 3, 7, 8])
    bounds = Bounds(since_ms=at(3), until_ms=at(7))
    sink, _ = export([[Msg(0, r) for r in a], [Msg(1, r) for r in b]], bounds)
    assert keys(sink.records) == [("b", 2), ("a", 2), ("a", 3), ("b", 3)]


def test_an_export_writes_each_record_as_on_the_topic_on_one_line() -> None:
    a = chain("a", [1, 2])
    pretty = orjson.dumps(a[1], option=orjson.OPT_INDENT_2)
    sink, _ = export([[Msg(0, orjson.dumps(a[0])), Msg(0, pretty)]])
    assert sink.raw[0] == orjson.dumps(a[0])  # byte for byte
    assert b"\n" not in sink.raw[1] and orjson.loads(sink.raw[1]) == a[1]


def test_an_export_leaves_out_what_is_not_an_event_and_says_so() -> None:
    a = chain("a", [1])
    sink, warnings = export([[Msg(0, b"not json", offset=7), Msg(0, a[0], offset=8)]])
    assert keys(sink.records) == [("a", 1)]
    assert len(warnings) == 1 and warnings[0].startswith("partition 0 offset 7 is not an event")


@pytest.mark.parametrize("until_second", [5, 30])
def test_a_partition_is_finished_at_its_first_record_far_past_the_end(until_second: int) -> None:
    a = chain("a", [1, 2, 50])  # 50 s is within the clock slack (60 s) of either bound
    far = chain("z", [1])[0] | {"occurred_at": "2026-11-23T10:05:00.000Z"}
    bounds = Bounds(until_ms=at(until_second))
    exporter = Exporter(bounds, [0, 1], ListSink(), print)
    assert exporter.feed([Msg(0, r) for r in a]) == []
    assert exporter.feed([Msg(0, far), Msg(1, far)]) == [0, 1]
