"""A worker that restored from decider snapshots and is then killed at any step of deciding
leaves exactly one decision per command and valid chains, once another worker took over.

Each case writes a snapshot every few commands, so each worker that takes over restores from
snapshots and folds only the events after them; the crash lands at a fault point, never a sleep.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.decider import AFTER_EVENTS_ACKED, AFTER_OUTCOMES_RECORDED, BEFORE_EVENTS_WRITTEN
from streams.snapshot_writer import AFTER_SNAPSHOT_WRITTEN
from tests.integration.test_crash_safety import (
    _command,
    _send_all,
    _wait_all_decided,
    assert_one_decision_each,
    send_until_crash,
)
from tests.stack import ChorusStack

COMMANDS = 150
WARM = 45  # decided and snapshotted by a first worker, which then stops
SNAPSHOT_EVERY = 5  # decided commands per partition between two snapshots
# The second worker restores from those snapshots and dies the 2nd time it reaches the point:
# deciding goes by batches (`take_batches`), so each point is reached once per batch;
# `send_until_crash` sends a round only once the one before it was decided.
STEPS = {
    "before the events are written": f"{BEFORE_EVENTS_WRITTEN}=crash@2",
    "after the events are acknowledged": f"{AFTER_EVENTS_ACKED}=crash@2",
    "after the outcomes are recorded": f"{AFTER_OUTCOMES_RECORDED}=crash@2",
    "right after a snapshot is written": f"{AFTER_SNAPSHOT_WRITTEN}=crash@2",
}


@pytest.mark.parametrize("plan", STEPS.values(), ids=list(STEPS))
def test_a_snapshotted_worker_killed_at_a_step_leaves_one_decision_per_command(
    stack: ChorusStack, plan: str
) -> None:
    stack.presence_ttl = 3600.0  # no timer commands: every command in the log is one sent here
    snapshots = {"CHORUS_SNAPSHOT_EVERY": str(SNAPSHOT_EVERY)}
    stack.wait_worker_ready(stack.start("worker", env=snapshots))
    first = stack.children[-1]
    commands = stack.start("commands")
    members = [stack.client(commands).sign_up(f"m{i}") for i in range(3)]
    teams = [members[i].new_team(*(m for m in members if m is not members[i])) for i in range(3)]
    steps = []
    for index in range(COMMANDS):
        member = members[index % 3]
        path, body = _command(index, teams[(index // 3) % 3], member)
        steps.append((member, path, body))

    acked = asyncio.run(_send_all(commands, steps[:WARM]))
    _wait_all_decided(members, acked)
    _wait_for_snapshots(stack)
    first.stop()  # a clean stop: it writes its partitions' snapshots as it goes

    stack.wait_worker_ready(stack.start("worker", env={**snapshots, "CHORUS_FAULTS": plan}))
    victim = stack.children[-1]
    assert victim.name == "worker" and victim.process is not None
    acked += send_until_crash(commands, steps[WARM:], members, victim.process)

    stack.start("worker", env=snapshots)
    outcomes = _wait_all_decided(members, acked)

    assert_one_decision_each(stack, acked, outcomes)


def _wait_for_snapshots(stack: ChorusStack) -> None:
    deadline = time.monotonic() + 60
    while _records_written(stack.kafka, stack.topics.decider_snapshots) == 0:
        assert time.monotonic() < deadline, "no decider snapshot was written"
        time.sleep(0.2)  # polling the topic, not timing the crash


def _records_written(bootstrap: str, topic: str, partitions: int = 3) -> int:
    """How many records were ever appended to `topic` (its partitions' end offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "snapshot-count"})
    try:
        ends = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        consumer.close()
    return sum(ends)
