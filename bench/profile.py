"""py-spy over part of a benchmark, and where its samples went.

`profiled` records a process (this one by default) and its children (collapsed stacks, py-spy's
raw format: one line per distinct stack, its frames from the root, then its sample count) while
its block runs; `hot` reads such a file back: the functions the samples were in (self), and the
functions on the stack (inclusive), as shares of all samples; `show` prints them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from rich.table import Table

from bench.harness import BenchStack, console

RATE = 100  # samples per second
_LINE = re.compile(r":\d+\)$")  # a frame's line number: functions are counted whole
_ROOT = re.compile(r"process \d+:|thread \(")  # the frames py-spy puts above a stack's functions


@contextmanager
def profiled(path: Path, pid: int | None = None) -> Iterator[None]:
    """py-spy records a process (this one by default) and its subprocesses into `path` while
    the block runs. (A child started in a session of its own is not followed: name it.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking"]
    argv += ["--subprocesses", "-r", str(RATE), "-f", "raw", "-o", str(path)]
    spy = subprocess.Popen(
        [*argv, "-p", str(os.getpid() if pid is None else pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)  # py-spy attaches before the work starts
    if spy.poll() is not None:
        assert spy.stderr is not None
        raise RuntimeError(f"py-spy did not start: {spy.stderr.read().decode().strip()}")
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # it writes what it has and exits
        spy.wait(30)


@contextmanager
def profiled_children(
    stack: BenchStack, names: Sequence[str], folder: Path, prefix: str = ""
) -> Iterator[dict[str, Path]]:
    """`profiled` on each named process of a benchmark's stack while the block runs; yields
    name -> the file of its stacks (`<folder>/<prefix><name>.txt`)."""
    pids = {c.name: c.process.pid for c in stack.children if c.process is not None}
    paths = {name: folder / f"{prefix}{name}.txt" for name in names}
    with ExitStack() as spies:
        for name, path in paths.items():
            spies.enter_context(profiled(path, pids[name]))
        yield paths


def hot(
    path: Path, top: int = 12, process: str = ""
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, the `top` functions by self share, the `top` by inclusive share) of a file
    `profiled` wrote, of the processes whose command line holds `process` (all by default).
    py-spy leaves idle threads out: the shares are of time spent working."""
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if process and process not in stack.split(";", 1)[0]:
            continue
        samples = int(count)
        frames = [_LINE.sub(")", frame) for frame in stack.split(";") if not _ROOT.match(frame)]
        if not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in dict.fromkeys(frames):  # once per stack, outermost first
            within[frame] += samples
    if total == 0:
        return 0, [], []

    def shares(counts: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, n / total) for frame, n in counts.most_common(top)]

    return total, shares(own), shares(within)


def show(path: Path, title: str, process: str = "") -> None:
    """Print where the samples of `path` (of the processes `process` names) went."""
    samples, own, within = hot(path, process=process)
    table = Table(title=f"{title} under py-spy: {samples:,} samples ({path})")
    table.add_column("self", justify="right")
    table.add_column("function (self)")
    table.add_column("inclusive", justify="right")
    table.add_column("function (on the stack)")
    for (frame, share), (outer, outer_share) in zip(own, within, strict=False):
        table.add_row(f"{share:.1%}", frame, f"{outer_share:.1%}", outer)
    console.print(table)
