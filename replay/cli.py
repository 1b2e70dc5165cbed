"""`chorus replay`: the analysts' export, state-at-an-instant and audit of the events log.

    chorus replay export [--from TIME] [--to TIME] [--team ID] [--format jsonl|csv|parquet]
                         [-o FILE]
    chorus replay state --at TIME [--team ID]
    chorus replay verify [--team ID] [--behind-bound SECONDS] [--file EXPORT.jsonl [--partial]]

Read-only: the topic is read with assigned partitions and a throwaway group that never commits,
and verify only SELECTs. Exit status: 0 fine, 1 verify found something wrong, 2 the command
could not run (one sentence on stderr). Progress shows on a terminal's stderr only.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from cli.subcommands import Handler, add_subcommand
from config.settings import Settings
from replay.bounds import Bounds, ReplayError, parse_instant
from replay.progress import say

if TYPE_CHECKING:
    from cli.subcommands import Subparsers
    from replay.reading import LogReader
    from replay.sinks import Sink
    from replay.verify import VerifyReport

TIME_HELP = "RFC 3339, e.g. 2026-11-23T19:30:00Z, or `now`"
FORMATS = ("jsonl", "csv", "parquet")


def add_parser(sub: Subparsers) -> None:
    """Register `replay` and its actions on the `chorus` command line."""
    replay = add_subcommand(
        sub,
        "replay",
        None,
        help="export, rebuild at an instant or verify the events log (read-only)",
        description="Read the events topic without touching the live system.",
    )
    actions = replay.add_subparsers(dest="replay_command", required=True, metavar="ACTION")
    _add_export(actions)
    _add_state(actions)
    _add_verify(actions)


def _add_export(actions: Subparsers) -> None:
    export = add_subcommand(
        actions,
        "export",
        _guarded(_export),
        help="the events in log order, as JSONL, CSV or Parquet",
        description="Events ordered by occurred_at, then (team_id, seq); each team's in seq "
        "order. JSONL: records as on the topic. CSV and Parquet: one column per envelope "
        "field, `data` as JSON. Repeated identical records appear once.",
    )
    export.add_argument("--from", dest="since", metavar="TIME", help=f"first instant; {TIME_HELP}")
    export.add_argument("--to", dest="until", metavar="TIME", help=f"last instant; {TIME_HELP}")
    _add_team(export, "only this team's events")
    export.add_argument("--format", choices=FORMATS, default="jsonl", help="default: jsonl")
    export.add_argument("-o", "--output", metavar="FILE", default="-", help="default: stdout")


def _add_state(actions: Subparsers) -> None:
    state = add_subcommand(
        actions,
        "state",
        _guarded(_state),
        help="the presence and calls read models at an instant, from the log alone",
        description="JSON on stdout: {position, presence: {members}, calls} for one team, "
        "or a list of those, each with its team_id, for all teams.",
    )
    state.add_argument("--at", required=True, metavar="TIME", help=TIME_HELP)
    _add_team(state, "only this team")


def _add_verify(actions: Subparsers) -> None:
    verify = add_subcommand(
        actions,
        "verify",
        _guarded(_verify),
        help="check hash chains and seq continuity, and the live read models against the log",
        description="Prints each chain problem and each difference between the read models "
        "rebuilt from the log and the live ones; exits 1 if there is any.",
    )
    _add_team(verify, "only this team")
    verify.add_argument(
        "--file", metavar="EXPORT.jsonl", help="check an exported copy offline (chain and seq)"
    )
    verify.add_argument(
        "--partial",
        action="store_true",
        help="the file starts mid-log (exported with --from): a team may start at any seq",
    )
    verify.add_argument(
        "--behind-bound",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long a live read model may stay behind its log before it fails (default 10)",
    )


def _add_team(action: argparse.ArgumentParser, help: str) -> None:
    action.add_argument("--team", metavar="ID", help=help)


def _guarded(handler: Handler) -> Handler:
    """Turn a ReplayError into one line on stderr and exit status 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace, settings: Settings) -> int:
        try:
            return handler(args, settings)
        except ReplayError as exc:
            say(str(exc))
            return 2
        except BrokenPipeError:
            # The reader went away (`| head`): fine; keep Python from complaining at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return run


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from replay.export import export_log

    bounds = Bounds(
        since_ms=None if args.since is None else parse_instant("--from", args.since, round_up=True),
        until_ms=None if args.until is None else parse_instant("--to", args.until),
        team_id=args.team,
    )
    if args.format == "parquet" and args.output == "-":
        raise ReplayError("--format parquet writes a file: give -o FILE")
    reader = _reader(settings)
    try:
        with _destination(args.output) as path, ExitStack() as files:
            sink = _sink(args.format, path, files)
            stats = export_log(reader, bounds, sink, say)
            sink.close()
    finally:
        reader.close()
    if sys.stderr.isatty():
        say(
            f"{stats.kept} events of {stats.teams} teams exported ({stats.repeats} repeated "
            f"copies skipped, {stats.differing} differing, {stats.malformed} malformed)"
        )
    return 0


def _state(args: argparse.Namespace, settings: Settings) -> int:
    from replay.reading import collector_paused

    bounds = Bounds(until_ms=parse_instant("--at", args.at), team_id=args.team)
    reader = _reader(settings)
    try:
        # The views, the document and its text are a million objects and no cycle: the
        # collector would walk them all, more than once, for nothing. They are gone (reference
        # counting) when `_write_state` returns, before it is back on.
        with collector_paused():
            _write_state(reader, bounds, args.team)
    finally:
        reader.close()
    return 0


def _write_state(reader: LogReader, bounds: Bounds, team: str | None) -> None:
    from replay.state import all_states, state_at, team_state

    views = state_at(reader, bounds, say)
    document = all_states(views) if team is None else team_state(views[team])
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    from replay.verify import check_audit, verify_lines, verify_topic

    if args.file is not None:
        try:
            with Path(args.file).open("rb") as lines:
                report = verify_lines(lines, args.team, partial=args.partial)
        except OSError as exc:
            raise ReplayError(f"cannot read {args.file}: {exc.strerror}") from exc
    else:
        if args.partial:
            raise ReplayError("--partial applies to --file only (the topic shows where it starts)")
        database_url = settings.require_database()
        reader = _reader(settings)
        try:
            report = verify_topic(reader, database_url, args.team, behind_bound=args.behind_bound)
        finally:
            reader.close()
        if args.team is None:  # the operators' audit log is one chain, of no team
            check_audit(settings.require_kafka(), settings.topics.audit, report)
    _print_report(report, compared=args.file is None)
    return 0 if report.ok else 1


def _print_report(report: VerifyReport, *, compared: bool) -> None:
    for line in [*report.problems, *map(str, report.differences), *report.quarantined]:
        print(line)
    for note in report.notes:
        print(f"note: {note}")
    checked = f"{report.events} events of {len(report.teams)} teams"
    found = f"{len(report.problems)} chain problems"
    if compared:
        found += f", {len(report.differences)} differences from the live read models"
        found += f", {len(report.quarantined)} quarantined records"
    print(f"{'ok' if report.ok else 'FAILED'}: {checked} checked; {found}", flush=True)


def _reader(settings: Settings) -> LogReader:
    from replay.reading import LogReader

    return LogReader(settings.require_kafka(), settings.topics.events)


@contextmanager
def _destination(output: str) -> Iterator[Path | None]:
    """A path beside FILE, renamed onto it once complete (None: stdout).

    An export that fails leaves no half-written FILE behind to be mistaken for a whole one.
    """
    if output == "-":
        yield None
        return
    final = Path(output)
    if final.is_dir():
        raise ReplayError(f"-o {output} is a directory: name a file")
    if final.exists() and not final.is_file():
        # A device or a pipe (/dev/null, a FIFO): written in place; renaming onto it would
        # replace it with a regular file.
        yield final
        return
    part = final.with_name(f".{final.name}.part")
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(final)


def _sink(kind: str, path: Path | None, files: ExitStack) -> Sink:
    from replay.sinks import CsvSink, JsonlSink, ParquetSink

    if kind == "parquet":
        assert path is not None  # refused earlier: parquet needs -o
        return ParquetSink(path)
    try:
        out = sys.stdout.buffer if path is None else files.enter_context(path.open("wb"))
    except OSError as exc:
        raise ReplayError(f"cannot write {path}: {exc.strerror}") from exc
    return JsonlSink(out) if kind == "jsonl" else CsvSink(out)
