"""What part of the log a replay reads: time bounds from the command line, and one team.

Every `occurred_at` in the log has the contract's fixed-width shape
(`2026-11-23T19:30:00.123Z`), so bounds are kept in that same shape and compared as strings:
no time is parsed per record in the hot loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.clock import format_millis, parse_time

#: How far the `occurred_at` of a partition's records may run out of order (a command whose
#: produce was retried for the producer's 30 s timeout lands after later ones). Reading starts
#: this much before `--from` and a partition stops only at a record this far past `--to`.
CLOCK_SLACK_MS = 60_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ReplayError(RuntimeError):
    """A replay cannot run as asked (bad time, unknown team, unreachable broker): exit 2."""


def parse_instant(option: str, text: str, *, round_up: bool = False) -> int:
    """Epoch milliseconds of an RFC 3339 date-time (or `now`) given for `option`.

    The log counts whole milliseconds; a finer `--from` rounds up so that it never takes in a
    record before it, a finer `--to` / `--at` rounds down for the same reason.
    """
    if text.strip().lower() == "now":
        moment = datetime.now(UTC)
    else:
        try:
            moment = parse_time(text.strip())
        except ValueError:
            raise ReplayError(
                f"{option} {text!r} is not an RFC 3339 date-time "
                "(like 2026-11-23T19:30:00.123Z) or `now`"
            ) from None
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1000) if round_up else micros // 1000


@dataclass(frozen=True)
class Bounds:
    """Records with `since <= occurred_at <= until` (each end optional), of one team or all.

    A team's records are taken as one contiguous run of its log: from its first record at or
    after `since` up to (not including) its first record past `until`. Within a team this is
    the same as filtering by time when its clock never ran backwards, and it keeps `seq`
    continuous (so an export verifies) when it did.
    """

    since_ms: int | None = None
    until_ms: int | None = None
    team_id: str | None = None

    def __post_init__(self) -> None:
        since, until = self.since_ms, self.until_ms
        if since is not None and until is not None and since > until:
            raise ReplayError("--from is later than --to: no instant lies between them")

    @property
    def since(self) -> str | None:
        """`since` as the contract writes times (compares as strings with `occurred_at`)."""
        return None if self.since_ms is None else format_millis(self.since_ms)

    @property
    def until(self) -> str | None:
        """`until` as the contract writes times."""
        return None if self.until_ms is None else format_millis(self.until_ms)

    @property
    def seek_ms(self) -> int | None:
        """Kafka timestamp to start each partition at (records are written after they occur)."""
        return None if self.since_ms is None else max(0, self.since_ms - CLOCK_SLACK_MS)

    @property
    def stop_after(self) -> str | None:
        """A partition is done at its first record that occurred after this."""
        return None if self.until_ms is None else format_millis(self.until_ms + CLOCK_SLACK_MS)

    def describe(self) -> str:
        """The bounds in words, for messages."""
        parts = []
        if self.team_id is not None:
            parts.append(f"of team {self.team_id}")
        if self.since is not None:
            parts.append(f"from {self.since}")
        if self.until is not None:
            parts.append(f"up to {self.until}")
        return " ".join(parts) or "in the log"
