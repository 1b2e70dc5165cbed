"""Progress of a long replay: a rich bar on a terminal's stderr, nothing when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


def _ignore(count: int) -> None:
    """The advance of a run nobody watches."""


@contextmanager
def progress(description: str, total: int, *, enabled: bool | None = None) -> Iterator[Advance]:
    """A function to call with the number of records read since the last call."""
    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    if not show or total <= 0:
        yield _ignore
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the bar goes once done; the summary line stays
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.advance(task, count)


def say(message: str) -> None:
    """One line for the analyst, on stderr (stdout carries the data)."""
    print(f"chorus: {message}", file=sys.stderr, flush=True)
