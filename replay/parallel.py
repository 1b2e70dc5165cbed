"""Reading the partitions of a pass in two processes where the machine has the cores.

A pass whose work per record is Python's (a state fold) is bound by one core; the broker and
librdkafka leave the other mostly idle. `split` gives a helper process part of the plan's
partitions (about half the records) and keeps the rest for the calling process; the helper,
started by a fork server (no fork of a process with librdkafka's threads running), reads its
part with a reader of its own and sends back how far it got and then its result.

The helper is a fresh interpreter (`python -m replay.parallel`), not a fork: forking a process
whose librdkafka threads are running is unsafe, and multiprocessing's other start methods
re-import the caller's `__main__`, which a caller without a main guard cannot take.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Generic, TypeVar

from replay.bounds import ReplayError
from replay.reading import Plan

#: Below this many records a second process costs more (its start, its own fetches) than it saves.
MIN_RECORDS = 100_000

T = TypeVar("T")
#: How a helper reports as it goes: (records read since the last report, what it has for the
#: caller so far, or None).
Report = Callable[[int, Any], None]
#: What a helper runs: (bootstrap, topic, its plan, report) -> its result.
Work = Callable[[str, str, Plan, Report], T]


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split(plan: Plan) -> tuple[Plan, Plan] | None:
    """(the caller's part, the helper's part) of a plan worth splitting, else None.

    Partitions go to the part with fewer records so far, largest first: the parts end together.
    """
    sizes = {partition: end - start for partition, (start, end) in plan.items() if end > start}
    if cores() < 2 or len(sizes) < 2 or sum(sizes.values()) < MIN_RECORDS:
        return None
    parts: tuple[Plan, Plan] = ({}, {})
    loads = [0, 0]
    for partition in sorted(sizes, key=lambda p: (-sizes[p], p)):
        lighter = loads.index(min(loads))
        parts[lighter][partition] = plan[partition]
        loads[lighter] += sizes[partition]
    return parts


@dataclass
class Helper(Generic[T]):
    """A process running `work` on its part of a plan; `poll` for progress, `result` to join."""

    process: subprocess.Popen[bytes]
    conn: Connection
    pending: tuple[str, Any] | None = field(default=None)  # a message `poll` read past

    @classmethod
    def start(cls, work: Work[T], bootstrap: str, topic: str, plan: Plan) -> Helper[T]:
        # The helper imports this code base from where this process does.
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
        process = subprocess.Popen(
            [sys.executable, "-m", "replay.parallel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
        )
        assert process.stdin is not None and process.stdout is not None
        with process.stdin as job:
            pickle.dump((work, bootstrap, topic, plan), job)
        return cls(process, Connection(os.dup(process.stdout.fileno()), writable=False))

    def poll(self) -> list[tuple[int, Any]]:
        """The reports the helper has sent since the last poll (without waiting)."""
        reports: list[tuple[int, Any]] = []
        while self.pending is None and self.conn.poll():
            kind, value = self._receive()
            if kind != "read":
                self.pending = (kind, value)
                break
            reports.append(value)
        return reports

    def result(self, take: Report) -> T:
        """Wait for the helper's result, passing its reports to `take` meanwhile."""
        pending = self.pending
        try:
            while pending is None or pending[0] == "read":
                if pending is not None:
                    take(*pending[1])
                pending = self._receive()
        finally:
            self._close()
        kind, value = pending
        if kind == "failed":
            raise ReplayError(str(value))
        return value  # type: ignore[no-any-return]

    def stop(self) -> None:
        """End the helper early (the caller failed)."""
        self.process.kill()
        self._close()

    def _close(self) -> None:
        self.conn.close()
        assert self.process.stdout is not None
        self.process.stdout.close()
        self.process.wait()

    def _receive(self) -> tuple[str, Any]:
        try:
            message: tuple[str, Any] = self.conn.recv()
        except EOFError:
            raise ReplayError("a helper process reading part of the log ended early") from None
        return message


def _main() -> None:
    """The helper process: a job on stdin, messages on stdout (nothing else may write there)."""
    # One pass, then the process ends: its objects (a million, no cycles) are never worth a
    # walk of the cyclic collector (`replay.reading.collector_paused`).
    gc.disable()
    outbox = _Outbox(Connection(os.dup(sys.stdout.fileno()), readable=False))
    sys.stdout = sys.stderr
    work, bootstrap, topic, plan = pickle.load(sys.stdin.buffer)
    try:
        result = work(bootstrap, topic, plan, lambda read, data: outbox.put("read", (read, data)))
    except ReplayError as exc:
        outbox.put("failed", str(exc))
    except Exception as exc:  # the caller says what went wrong, in one line
        outbox.put("failed", f"a helper process failed: {type(exc).__name__}: {exc}")
    else:
        outbox.put("done", result)
    finally:
        outbox.close()


class _Outbox:
    """Messages to the caller, sent by a thread: the helper reads on while the caller is busy.

    At most `depth` wait, so a helper ahead of its caller waits for it, holding little.
    """

    def __init__(self, conn: Connection, depth: int = 4) -> None:
        self._conn = conn
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._send, name="replay-outbox", daemon=True)
        self._thread.start()

    def put(self, kind: str, value: Any) -> None:
        self._queue.put((kind, value))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _send(self) -> None:
        broken = False
        while (message := self._queue.get()) is not None:
            if broken:
                continue  # the caller is gone: keep emptying the queue so that `put` returns
            try:
                self._conn.send(message)
            except OSError:
                broken = True


if __name__ == "__main__":
    _main()
