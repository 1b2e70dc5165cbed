"""Named fault points (FoundationDB's BUGGIFY): off unless a process's settings turn them on.

    faults = Faults.parse(settings.faults)      # e.g. "decider.after_events_acked=crash@5"
    faults.point("decider.after_events_acked")  # the 5th time it gets here, the process dies

A plan is `name=action[@n[-m]]`, several separated by commas; `n` (default 1) is the time the
point is reached at which the action happens, once (or each time from the n-th to the m-th).
Actions: `crash` ends the process at once with `os._exit` (no cleanup, no flush, as a power cut
would), `fail` raises `FaultInjected`.
Crash tests aim at a point instead of sleeping and hoping to land between two effects.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Literal, cast

log = logging.getLogger(__name__)

#: The exit status of a process a `crash` fault ended (EX_SOFTWARE), for tests to tell it apart.
CRASH_EXIT_CODE = 70
ACTIONS = ("crash", "fail")
Action = Literal["crash", "fail"]


class FaultInjected(RuntimeError):
    """A `fail` fault was reached."""


class FaultPlanError(ValueError):
    """A fault plan that cannot be read."""


@dataclass(frozen=True)
class Fault:
    """What happens at a point, and the how-many-th time it is reached that it happens."""

    action: Action
    at: int = 1
    until: int | None = None  # the last time it happens (None: only at `at`)

    def strikes(self, time: int) -> bool:
        """Whether it happens the `time`-th time its point is reached."""
        return self.at <= time <= (self.until or self.at)


class Faults:
    """The faults turned on in this process, and how often each point was reached."""

    def __init__(self, plan: dict[str, Fault] | None = None) -> None:
        self._plan = dict(plan or {})
        self._reached: Counter[str] = Counter()

    @classmethod
    def parse(cls, text: str) -> Faults:
        """The faults of a plan such as "decider.after_events_acked=crash@5" ("" for none)."""
        plan: dict[str, Fault] = {}
        for entry in filter(None, (part.strip() for part in text.split(","))):
            name, equals, what = entry.partition("=")
            action, _, times = what.partition("@")
            at, dash, until = times.partition("-")
            if not equals or not name or action not in ACTIONS:
                raise FaultPlanError(f"{entry!r} is not name=crash|fail[@n[-m]]")
            if at and not (at.isdigit() and int(at) >= 1):
                raise FaultPlanError(f"{entry!r}: @{at} is not a count from 1")
            if dash and not (until.isdigit() and int(until) >= int(at or 1)):
                raise FaultPlanError(f"{entry!r}: -{until} is not a count from @{at or 1}")
            last = int(until) if dash else None
            plan[name.strip()] = Fault(cast(Action, action), int(at) if at else 1, last)
        return cls(plan)

    def point(self, name: str) -> None:
        """A named point: does nothing unless a fault is planned for it, here and now."""
        fault = self._plan.get(name)
        if fault is None:
            return
        self._reached[name] += 1
        time = self._reached[name]
        if not fault.strikes(time):
            return
        if fault.action == "fail":
            raise FaultInjected(f"fault {name} (time {time})")
        log.critical("fault %s (time %d): crashing the process", name, time)
        os._exit(CRASH_EXIT_CODE)


#: No fault anywhere: what a process runs with unless its settings plan some.
NO_FAULTS = Faults()
