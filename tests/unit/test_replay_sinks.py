"""Export formats: JSONL as on the topic, CSV with the envelope flattened, typed Parquet."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from replay.sinks import CsvSink, JsonlSink, ParquetSink, csv_row
from schemas.envelope import ENVELOPE_FIELDS, GENESIS_HASH, seal

RECORD: dict[str, Any] = seal(
    {
        "event_id": "e1",
        "type": "call.started",
        "version": 1,
        "team_id": "t1",
        "seq": 7,
        "occurred_at": "2026-11-23T19:30:00.123Z",
        "actor": "u1",
        "causation_id": "c1",
        "data": {"topic": 'Café, "☕"\nstand-up', "call_id": "k1", "invitees": ["u2"]},
        "prev_hash": GENESIS_HASH,
    }
)


def test_a_csv_row_has_the_envelope_in_order_and_data_as_canonical_json() -> None:
    row = csv_row(RECORD)
    assert len(row) == len(ENVELOPE_FIELDS)
    assert dict(zip(ENVELOPE_FIELDS, row, strict=True)) == {
        **{name: str(RECORD[name]) for name in ENVELOPE_FIELDS},
        "data": '{"call_id":"k1","invitees":["u2"],"topic":"Café, \\"☕\\"\\nstand-up"}',
    }


def test_csv_cells_are_json_spelled_and_missing_fields_empty() -> None:
    row = csv_row({"seq": 3, "version": True, "data": None})
    cells = dict(zip(ENVELOPE_FIELDS, row, strict=True))
    assert cells["seq"] == "3" and cells["version"] == "true" and cells["data"] == ""
    assert cells["event_id"] == ""


def test_a_csv_export_reads_back_into_the_same_records() -> None:
    out = io.BytesIO()
    sink = CsvSink(out)
    sink.write([orjson.dumps(RECORD), orjson.dumps({**RECORD, "seq": 8})])
    sink.close()
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert [row["seq"] for row in rows] == ["7", "8"]
    assert orjson.loads(rows[0]["data"]) == RECORD["data"]
    assert rows[0]["hash"] == RECORD["hash"]


def test_jsonl_lines_are_the_bytes_given() -> None:
    out = io.BytesIO()
    sink = JsonlSink(out)
    sink.write([b'{"a":1}', b'{"b":2}'])
    sink.write([])
    sink.write([b'{"c":3}'])
    sink.close()
    assert out.getvalue() == b'{"a":1}\n{"b":2}\n{"c":3}\n'


def test_a_jsonl_write_failure_reaches_the_caller() -> None:
    class Broken(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError("gone")

    sink = JsonlSink(Broken())
    sink.write([b"{}"])
    with pytest.raises(BrokenPipeError):
        sink.close()


def test_parquet_keeps_the_types(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    path = tmp_path / "events.parquet"
    sink = ParquetSink(path)
    sink.write([orjson.dumps(RECORD), orjson.dumps({**RECORD, "seq": 8})])
    sink.close()
    table = pq.read_table(path)
    assert table.column_names == list(ENVELOPE_FIELDS)
    assert table.schema.field("seq").type == pa.int64()
    assert table.schema.field("occurred_at").type == pa.timestamp("ms", tz="UTC")
    first = table.to_pylist()[0]
    assert first["occurred_at"].isoformat() == "2026-11-23T19:30:00.123000+00:00"
    assert orjson.loads(first["data"]) == RECORD["data"]
    assert table.column("seq").to_pylist() == [7, 8]
