"""Positions: the opaque strings clients get back and hand to `?after=` and `Last-Event-ID`.

Two kinds, both strings to clients:
- `c<partition>.<offset>`: where a command was appended (the 202 of a client command);
- `<seq>`: a team's event sequence number, the position of its read models (decided commands,
  read-model answers, SSE ids).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMMAND = re.compile(r"^c([0-9]{1,9})\.([0-9]{1,19})$")
_SEQ = re.compile(r"^[0-9]{1,19}$")


@dataclass(frozen=True)
class CommandPosition:
    partition: int
    offset: int


def command_position(partition: int, offset: int) -> str:
    """The position of a command appended at `offset` of commands-topic `partition`."""
    return f"c{partition}.{offset}"


def parse_position(text: str) -> CommandPosition | int:
    """A command position, or a team seq; ValueError for anything else."""
    if _SEQ.match(text):
        return int(text)
    match = _COMMAND.match(text)
    if match is None:
        raise ValueError(f"not a position: {text!r}")
    return CommandPosition(partition=int(match.group(1)), offset=int(match.group(2)))


#: How many recent changes of a team the read model keeps for live queries to resume from; a
#: client resuming from further back gets a fresh snapshot instead. They are trimmed every
#: `CHANGES_TRIM_EVERY` positions, not at each event.
CHANGES_KEPT = 10_000
CHANGES_TRIM_EVERY = 1_000


def changes_horizon(position: int) -> int:
    """Changes at or below this seq are forgotten once a team reached `position`.

    A pure function of the position, so the live projector and a rebuild trim alike, and a live
    query resuming from below it knows to start with a fresh snapshot.
    """
    return max(0, (position // CHANGES_TRIM_EVERY) * CHANGES_TRIM_EVERY - CHANGES_KEPT)
