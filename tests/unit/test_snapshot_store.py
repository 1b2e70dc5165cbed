"""The in-memory snapshot store keeps the snapshot-store contract (Kafka: tests/integration)."""

from __future__ import annotations

import pytest

from streams.snapshot_store import InMemorySnapshotStore
from tests.contracts import SnapshotStoreContract


class TestInMemorySnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def store(self) -> InMemorySnapshotStore:
        return InMemorySnapshotStore()
