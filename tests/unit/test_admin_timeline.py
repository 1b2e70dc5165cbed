"""A team's timeline page from its records: paging by seq, each record's chain status, copies
written twice shown once, an edited copy and an unreadable record named."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from admin.timeline import Timeline, _Collector
from schemas.envelope import GENESIS_HASH, record_to_bytes, seal

pytestmark = pytest.mark.unit
TEAM = str(uuid.uuid4())


def chain(count: int) -> list[dict[str, Any]]:
    records, previous = [], GENESIS_HASH
    for seq in range(1, count + 1):
        record = seal(
            {
                "event_id": str(uuid.uuid4()),
                "type": "presence.changed",
                "version": 1,
                "team_id": TEAM,
                "seq": seq,
                "occurred_at": "2026-11-30T12:00:00.000Z",
                "actor": TEAM,
                "causation_id": TEAM,
                "data": {"n": seq},
                "prev_hash": previous,
            }
        )
        previous = record["hash"]
        records.append(record)
    return records


def page(values: list[bytes | None], after: int = 0, limit: int = 50) -> Timeline:
    timeline = Timeline(TEAM, 0)
    collector = _Collector(timeline, after, limit)
    for offset, value in enumerate(values):
        if not collector.add(value, offset):
            break
    return timeline


def test_pages_follow_one_another_by_seq() -> None:
    values: list[bytes | None] = [record_to_bytes(r) for r in chain(5)]

    first = page(values, limit=2)
    second = page(values, after=2, limit=2)
    last = page(values, after=4, limit=2)

    assert [e["seq"] for e in first.events] == [1, 2] and first.next_after == 2
    assert [e["seq"] for e in second.events] == [3, 4] and second.next_after == 4
    assert [e["seq"] for e in last.events] == [5] and last.next_after is None
    assert all(e["chain"] == "ok" and e["problems"] == [] for e in first.events + last.events)


def test_a_copy_written_twice_is_shown_once_and_an_edited_copy_is_named() -> None:
    records = chain(3)
    edited = {**records[1], "data": {"n": "changed"}}
    values: list[bytes | None] = [record_to_bytes(r) for r in records[:2]]
    values += [record_to_bytes(records[1]), record_to_bytes(edited), record_to_bytes(records[2])]

    shown = page(values)

    assert [(e["seq"], e["chain"]) for e in shown.events] == [
        (1, "ok"),
        (2, "ok"),
        (2, "broken"),
        (3, "ok"),
    ]
    assert [p["kind"] for p in shown.events[2]["problems"]] == ["duplicate_differs"]


def test_an_unreadable_record_is_shown_where_it_lies_and_a_gap_is_named() -> None:
    records = chain(4)
    values: list[bytes | None] = [record_to_bytes(records[0]), b"{not json", None]
    values += [record_to_bytes(records[2]), record_to_bytes(records[3])]

    shown = page(values)
    later = page(values, after=3)

    assert [(e["seq"], e["chain"]) for e in shown.events] == [
        (1, "ok"),
        (None, "broken"),
        (3, "broken"),
        (4, "ok"),
    ]
    assert shown.events[1]["problems"][0]["kind"] == "malformed"
    assert [p["kind"] for p in shown.events[2]["problems"]] == ["seq_gap"]
    assert [e["seq"] for e in later.events] == [4]  # the unreadable one lies before seq 3
