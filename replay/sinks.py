"""Where exported records go: JSON Lines, CSV or Parquet, written in batches.

- JSONL: each record's bytes exactly as they are on the topic, one per line. The hash does not
  depend on key order or spacing (verify recomputes the canonical form), so the copy verifies.
- CSV: one row per record, one column per envelope field in the contract's order; `data`, whose
  fields differ by event type, is one column holding its canonical JSON (sorted keys), so every
  export has the same header and loses nothing.
- Parquet (the `parquet` extra, pyarrow): the same columns, typed: `version` and `seq` int64,
  `occurred_at` a UTC timestamp in milliseconds, `data` JSON text.
"""

from __future__ import annotations

import csv
import io
import queue
import threading
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from replay.bounds import ReplayError
from schemas.envelope import ENVELOPE_FIELDS, record_from_bytes

_PARQUET_ROWS = 65_536  # rows per row group: bounded memory, still large enough to compress


class Sink(Protocol):
    """Takes batches of records (their bytes as on the topic), in order."""

    def write(self, payloads: list[bytes]) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One record per line, as on the topic, written by a thread of its own.

    Writing a file releases the GIL: a writer thread lets reading the next batch go on
    meanwhile, which is most of what an export costs beyond reading.
    """

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._queue: queue.Queue[list[bytes] | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="jsonl-writer", daemon=True)
        self._thread.start()

    def write(self, payloads: list[bytes]) -> None:
        if self._failure is not None:
            raise self._failure
        if payloads:
            self._queue.put(payloads)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        self._out.flush()

    def _drain(self) -> None:
        while (payloads := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep emptying the queue so that `write` never blocks forever
            try:
                self._out.write(b"\n".join(payloads))
                self._out.write(b"\n")
            except BaseException as exc:  # handed to the main thread, raised there
                self._failure = exc


def csv_row(record: dict[str, Any]) -> list[str]:
    """A record as one CSV row: envelope fields in order, `data` as canonical JSON text."""
    return [_cell(record.get(name)) for name in ENVELOPE_FIELDS]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float | dict | list):
        # JSON spelling (true, 1.5, {...}) so a cell reads back as the value it was.
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


class CsvSink:
    """A header row, then one row per record (RFC 4180 quoting, UTF-8)."""

    def __init__(self, out: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        self._writer = csv.writer(self._text)
        self._writer.writerow(ENVELOPE_FIELDS)

    def write(self, payloads: list[bytes]) -> None:
        self._writer.writerows(csv_row(record_from_bytes(payload)) for payload in payloads)

    def close(self) -> None:
        self._text.flush()
        self._text.detach()  # the caller owns (and closes) the byte stream


class ParquetSink:
    """Typed columns, one row group per 65,536 records."""

    def __init__(self, path: Path) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise ReplayError(
                "--format parquet needs pyarrow: pip install 'chorus[parquet]'"
            ) from None
        self._pa = pa
        fields: list[tuple[str, Any]] = [(name, pa.string()) for name in ENVELOPE_FIELDS]
        types = {"version": pa.int64(), "seq": pa.int64(), "occurred_at": pa.string()}
        self._text_schema = pa.schema([(name, types.get(name, kind)) for name, kind in fields])
        self._schema = self._text_schema.set(
            ENVELOPE_FIELDS.index("occurred_at"),
            pa.field("occurred_at", pa.timestamp("ms", tz="UTC")),
        )
        self._writer = pq.ParquetWriter(str(path), self._schema)
        self._rows: list[dict[str, Any]] = []

    def write(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            record = record_from_bytes(payload)
            row = {name: record.get(name) for name in ENVELOPE_FIELDS}
            row["data"] = orjson.dumps(row["data"], option=orjson.OPT_SORT_KEYS).decode()
            self._rows.append(row)
            if len(self._rows) >= _PARQUET_ROWS:
                self._flush()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if not self._rows:
            return
        batch = self._pa.RecordBatch.from_pylist(self._rows, schema=self._text_schema)
        index = ENVELOPE_FIELDS.index("occurred_at")
        # Arrow parses the contract's `...Z` strings itself, far faster than per row in Python.
        stamps = batch.column(index).cast(self._pa.timestamp("ms", tz="UTC"))
        self._writer.write_batch(batch.set_column(index, self._schema.field(index), stamps))
        self._rows.clear()
