"""The directory of media nodes: each node's latest heartbeat from the compacted media-nodes topic.

A heartbeat is sent every second, keyed by node id. Liveness is judged by the sender's time
(`at_ms`, wall clock) rather than by when it was read, so that a node reading the topic from the
beginning after a start does not take long-dead nodes for live ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import msgspec

from media.placement import NodeHeartbeat

SILENT_AFTER = 3.0  # seconds without a heartbeat: the node is gone, its rooms move


class NodeStatus(msgspec.Struct, frozen=True):
    """The value of a heartbeat record on the media-nodes topic."""

    node_id: str
    region: str
    base_url: str
    rooms: int
    participants: int
    capacity: int
    draining: bool
    at_ms: int

    def to_bytes(self) -> bytes:
        return msgspec.json.encode(self)

    def heartbeat(self) -> NodeHeartbeat:
        """What placement needs, timed on the wall clock in seconds."""
        return NodeHeartbeat(
            node_id=self.node_id,
            region=self.region,
            rooms=self.rooms,
            participants=self.participants,
            capacity=self.capacity,
            draining=self.draining,
            at=self.at_ms / 1000,
        )


def decode_status(value: bytes | None) -> NodeStatus | None:
    """A heartbeat's value, or None for a tombstone or a value that is not one."""
    if not value:
        return None
    try:
        return msgspec.json.decode(value, type=NodeStatus)
    except msgspec.DecodeError:
        return None


class Directory:
    """The latest status of every node heard of."""

    def __init__(self, silent_after: float = SILENT_AFTER) -> None:
        self.nodes: dict[str, NodeStatus] = {}
        self._silent_after = silent_after

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Fold one record of the media-nodes topic (a tombstone forgets the node)."""
        status = decode_status(value)
        if status is not None:
            current = self.nodes.get(status.node_id)
            if current is None or current.at_ms <= status.at_ms:
                self.nodes[status.node_id] = status
        elif key is not None:
            self.nodes.pop(key.decode(errors="replace"), None)

    def alive(self, node_id: str, now: float) -> bool:
        """Heard from within `silent_after` seconds of `now` (wall clock)."""
        status = self.nodes.get(node_id)
        return status is not None and now - status.at_ms / 1000 <= self._silent_after

    def serving(self, node_id: str, now: float) -> bool:
        """Alive and not draining: may keep and take rooms."""
        status = self.nodes.get(node_id)
        return status is not None and not status.draining and self.alive(node_id, now)

    def allocators(self, now: float) -> list[str]:
        """The nodes that share the allocation work: alive and not draining."""
        return sorted(node for node in self.nodes if self.serving(node, now))

    def heartbeats(self) -> list[NodeHeartbeat]:
        return [status.heartbeat() for status in self.nodes.values()]


def partition_owner(partition: int, nodes: Iterable[str]) -> str | None:
    """The node that allocates rooms for an events partition: rendezvous (highest random weight)
    hashing, so every node computes the same owner and only 1/n of partitions move when a node
    comes or goes."""
    best: tuple[bytes, str] | None = None
    for node in nodes:
        weight = hashlib.sha256(f"{partition}:{node}".encode()).digest()
        if best is None or (weight, node) > best:
            best = (weight, node)
    return None if best is None else best[1]
