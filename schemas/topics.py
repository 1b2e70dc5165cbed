"""The Kafka topics Chorus writes and reads, by name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """Names of the Kafka topics; a prefix lets tests and stacks share one broker."""

    prefix: str = "chorus"

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def media_nodes(self) -> str:
        """Media nodes' heartbeats, keyed by node id (compacted: the latest per node)."""
        return f"{self.prefix}.media-nodes"

    @property
    def decider_snapshots(self) -> str:
        """Each team's decider state and the events offset it reflects (compacted), in the
        partition number of its events."""
        return f"{self.prefix}.decider-snapshots"

    @property
    def audit(self) -> str:
        """Operators' support edits, one hash-chained record each (schemas/audit.py): one
        partition holds the whole chain; kept forever, never compacted."""
        return f"{self.prefix}.audit"

    @property
    def revocations(self) -> str:
        """Users whose tokens signed before a time are refused, keyed by user id (compacted:
        the latest per user); every service applies them (auth/revocations.py)."""
        return f"{self.prefix}.revocations"
