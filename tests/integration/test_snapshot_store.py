"""The Kafka snapshot store keeps the snapshot-store contract, on the session's broker, and a
decider restores from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from schemas.commands import CommandPayload, JoinCall, StartCall
from schemas.mapper import MAPPER
from schemas.topics import Topics
from streams.decider import Decider
from streams.domain import fold, recorded
from streams.domain.testing import command
from streams.event_log import KafkaEventLog
from streams.snapshot_store import KafkaSnapshotStore
from streams.snapshots import restore
from streams.team_states import TeamStates
from tests.contracts import SnapshotStoreContract
from tests.integration.test_event_log import _wait_until_readable


class TestKafkaSnapshotStore(SnapshotStoreContract):
    @pytest.fixture
    def store(self, kafka_bootstrap: str, topics: Topics) -> Iterator[KafkaSnapshotStore]:
        _wait_until_readable(kafka_bootstrap, topics.decider_snapshots)
        store = KafkaSnapshotStore(kafka_bootstrap, topics.decider_snapshots)
        yield store
        store.close()


def test_the_snapshots_topic_is_compacted_with_the_events_partitions(
    kafka_bootstrap: str, topics: Topics
) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource("topic", topics.decider_snapshots)
    config = admin.describe_configs([resource])[resource].result()
    metadata = admin.list_topics(timeout=10).topics

    assert config["cleanup.policy"].value == "compact"
    assert len(metadata[topics.decider_snapshots].partitions) == len(
        metadata[topics.events].partitions
    )


async def test_a_new_decider_restores_from_the_snapshots_and_the_events_after_them(
    kafka_bootstrap: str, topics: Topics
) -> None:
    _wait_until_readable(kafka_bootstrap, topics.events)
    _wait_until_readable(kafka_bootstrap, topics.decider_snapshots)
    events = KafkaEventLog(kafka_bootstrap, topics.events)
    store = KafkaSnapshotStore(kafka_bootstrap, topics.decider_snapshots)
    try:
        first = Decider(events, None, presence_ttl=30, snapshots=store)
        await first.decide(1, 0, _raw("a", "ann", StartCall(call_id="c1")))
        await first.decide(1, 1, _raw("b", "ann", StartCall(call_id="c1")))
        assert first.snapshots is not None
        await first.revoked({1})  # written on the way out
        first.assigned({1})  # and back (a rebalance hands a worker its partitions again)
        await first.decide(1, 2, _raw("a", "bob", JoinCall(call_id="c1")))  # after them
        checkpoint = restore(store.latest(1)).start

        again = await TeamStates(events, None, store).partition(1)

        by_team: dict[str, list[dict[str, Any]]] = {}
        for _, record in events.read(1):
            by_team.setdefault(record["team_id"], []).append(record)
        assert checkpoint == 2 and again.position == 3
        # A loaded partition grants fresh leases (not in the log): compare what the log records.
        restored = {team: recorded(state) for team, state in again.teams.items()}
        assert restored == {team: fold(records) for team, records in by_team.items()}
    finally:
        events.close()
        store.close()


def _raw(team_id: str, actor: str, payload: CommandPayload) -> bytes:
    each = command(actor, payload, team_id=team_id)
    return MAPPER.command_to_bytes(each)
