"""Where a new room goes: a live node with room to spare, in the wanted region if possible.

Between the candidates, pick as LiveKit's node selector does: two at random, the less loaded of
the two. This spreads rooms without any global lock, and a burst of placements made from the
same stale heartbeats does not all land on the one least-loaded node.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

HEARTBEAT_MAX_AGE = 5.0  # seconds; LiveKit also ignores stats older than 5 s


@dataclass(frozen=True)
class NodeHeartbeat:
    """What a media node last said about itself."""

    node_id: str
    region: str
    rooms: int
    participants: int
    capacity: int  # participants the node can mix
    draining: bool
    at: float  # when it was sent, seconds on the placer's clock

    @property
    def load(self) -> float:
        """Share of the capacity in use (1.0 or more is full)."""
        return self.participants / self.capacity if self.capacity > 0 else 1.0


class NoNodeAvailable(Exception):
    """No live node has free capacity in any region."""


def eligible(
    heartbeats: Iterable[NodeHeartbeat], now: float, max_age: float
) -> list[NodeHeartbeat]:
    """Nodes that are alive (heard from recently), not draining and not full."""
    return [
        node
        for node in heartbeats
        if now - node.at <= max_age and not node.draining and node.participants < node.capacity
    ]


def choose_node(
    heartbeats: Iterable[NodeHeartbeat],
    *,
    region: str | None,
    now: float,
    rng: random.Random,
    max_age: float = HEARTBEAT_MAX_AGE,
) -> NodeHeartbeat:
    """The node for a new room: wanted region first, then any; two random choices."""
    candidates = eligible(heartbeats, now, max_age)
    if not candidates:
        raise NoNodeAvailable("no live media node has free capacity")
    in_region = [node for node in candidates if node.region == region]
    pool = in_region or candidates
    # Sorted first so that the same rng draws give the same answer whatever the input order.
    pool.sort(key=lambda node: node.node_id)
    picked = rng.sample(pool, k=min(2, len(pool)))
    return min(picked, key=lambda node: (node.load, node.rooms, node.node_id))
