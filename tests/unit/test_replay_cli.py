"""The replay command line's own parts: where an export is written, how failures exit."""

from __future__ import annotations

import argparse
import os
import stat
import threading
from pathlib import Path

import pytest

from cli.main import build_parser
from config.settings import Settings
from replay.bounds import ReplayError
from replay.cli import _destination


def test_a_file_appears_only_once_complete(tmp_path: Path) -> None:
    target = tmp_path / "day.jsonl"
    with _destination(str(target)) as path:
        assert path is not None and path != target and path.parent == tmp_path
        path.write_bytes(b"{}\n")
        assert not target.exists()
    assert target.read_bytes() == b"{}\n" and list(tmp_path.iterdir()) == [target]


def test_a_failed_export_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "day.jsonl"
    with pytest.raises(ReplayError), _destination(str(target)) as path:
        assert path is not None
        path.write_bytes(b"{}\n")
        raise ReplayError("the broker went away")
    assert list(tmp_path.iterdir()) == []


def test_a_pipe_is_written_in_place_never_replaced(tmp_path: Path) -> None:
    pipe = tmp_path / "export.pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    # Daemon: were the pipe replaced, this reader would wait for a writer forever.
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()), daemon=True)
    reader.start()
    with _destination(str(pipe)) as path:
        assert path == pipe
        path.write_bytes(b"{}\n")
    reader.join(10)
    assert received == [b"{}\n"]
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    assert list(tmp_path.iterdir()) == [pipe]


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="is a directory"), _destination(str(tmp_path)):
        pass


def test_stdout_is_the_default() -> None:
    with _destination("-") as path:
        assert path is None


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["replay", *argv])


def test_the_actions_and_their_options() -> None:
    export = parse("export", "--from", "2026-11-23T19:00:00Z", "--team", "t", "--format", "csv")
    assert (export.since, export.until, export.team, export.format, export.output) == (
        "2026-11-23T19:00:00Z",
        None,
        "t",
        "csv",
        "-",
    )
    assert parse("state", "--at", "now").at == "now"
    verify = parse("verify", "--file", "x.jsonl", "--partial")
    assert (verify.file, verify.partial, verify.team) == ("x.jsonl", True, None)


def test_a_bad_time_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("state", "--at", "soon")
    assert args.handler(args, Settings(kafka_bootstrap="127.0.0.1:9")) == 2
    assert capsys.readouterr().err == (
        "chorus: --at 'soon' is not an RFC 3339 date-time (like 2026-11-23T19:30:00.123Z) "
        "or `now`\n"
    )


def test_parquet_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("export", "--format", "parquet")
    assert args.handler(args, Settings(kafka_bootstrap="127.0.0.1:9")) == 2
    assert "give -o FILE" in capsys.readouterr().err
