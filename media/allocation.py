"""Room allocation without a global lock: one allocator per events partition, deterministic ids.

For each events partition, the live non-draining node that wins rendezvous hashing over the
directory allocates the rooms of that partition's calls. Two nodes that briefly both think they
own a partition (or a node that restarts) send the same command id for the same step of a call
(its n-th allocation, its release), and the decider records a command id once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from media.call_view import CallInfo, CallView
from media.directory import SILENT_AFTER, Directory, partition_owner
from media.placement import NoNodeAvailable, choose_node

COMMAND_NAMESPACE = uuid.UUID("2b7d4c1e-8f3a-4e6b-a9d2-5c0f1e7b3a64")
RESEND_AFTER = 5.0  # seconds: a command not yet seen in the log is sent again (same id)


def allocate_id(call_id: str, allocations: int) -> str:
    """The id of a call's next allocation, after `allocations` earlier ones."""
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{call_id}/allocate/{allocations}"))


def release_id(call_id: str, allocations: int) -> str:
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{call_id}/release/{allocations}"))


def leave_id(call_id: str, user_id: str, joins: int) -> str:
    """The id of the leave the media tier records for a user's `joins`-th time in a call."""
    return str(uuid.uuid5(COMMAND_NAMESPACE, f"{call_id}/leave/{user_id}/{joins}"))


def speaking_id(call_id: str, user_id: str, room: int, joins: int, change: int) -> str:
    """The id of the `change`-th speaking report of a user in a call's `room`-th room during
    their `joins`-th join: a send retried after a failure is recorded once, and a room that
    moved (or a rejoin) starts a new series that cannot be mistaken for the old one."""
    name = f"{call_id}/speaking/{user_id}/{room}/{joins}/{change}"
    return str(uuid.uuid5(COMMAND_NAMESPACE, name))


@dataclass(frozen=True)
class Allocate:
    """Record that `call` gets a room on `node`."""

    command_id: str
    call: CallInfo
    node: str
    base_url: str


@dataclass(frozen=True)
class Release:
    """Record that the room of the ended `call` is released."""

    command_id: str
    call: CallInfo


Step = Allocate | Release


class Allocator:
    """What this node must send for the partitions it owns now; remembers what it sent."""

    def __init__(
        self, node_id: str, rng: random.Random | None = None, resend_after: float = RESEND_AFTER
    ) -> None:
        self.node_id = node_id
        self._rng = rng or random.Random()
        self._resend_after = resend_after
        self._sent: dict[str, float] = {}  # command id -> when (monotonic seconds)

    def owned(self, directory: Directory, partitions: set[int], now: float) -> set[int]:
        """The events partitions this node allocates for now."""
        nodes = directory.allocators(now)
        return {p for p in partitions if partition_owner(p, nodes) == self.node_id}

    def plan(
        self, view: CallView, directory: Directory, now: float, clock: Callable[[], float]
    ) -> list[Step]:
        """Steps due now (`now`: wall clock, for heartbeats; `clock`: monotonic, for resends)."""
        owned = self.owned(directory, {call.partition for call in view.calls.values()}, now)
        steps: list[Step] = []
        for call in view.calls.values():
            if call.partition not in owned:
                continue
            step = self._step(call, view.region_of(call), directory, now)
            if step is not None and self._due(step.command_id, clock()):
                steps.append(step)
        return steps

    def _step(
        self, call: CallInfo, region: str | None, directory: Directory, now: float
    ) -> Step | None:
        if not call.active:
            return Release(release_id(call.call_id, call.allocations), call)
        if call.node is not None and directory.serving(call.node, now):
            return None
        try:
            # The starter's region if a node there has room, else any region (and with no
            # region reported, any region).
            node = choose_node(
                directory.heartbeats(), region=region, now=now, rng=self._rng, max_age=SILENT_AFTER
            )
        except NoNodeAvailable:
            return None  # tried again at the next heartbeat
        base_url = directory.nodes[node.node_id].base_url
        return Allocate(allocate_id(call.call_id, call.allocations), call, node.node_id, base_url)

    def _due(self, command_id: str, now: float) -> bool:
        sent = self._sent.get(command_id)
        if sent is not None and now - sent < self._resend_after:
            return False
        self._sent[command_id] = now
        if len(self._sent) > 10_000:
            # Forget what is long settled; a forgotten id is at worst sent once more.
            cutoff = now - 10 * self._resend_after
            self._sent = {key: at for key, at in self._sent.items() if at >= cutoff}
        return True
