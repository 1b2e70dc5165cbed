"""A command whose append Kafka never confirmed is an unknown outcome, and a retry never doubles.

The test has a broker of its own (the session's is shared) and freezes its JVM with SIGSTOP:
the command is written to the socket, the broker neither appends nor answers until SIGCONT.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.kafka import ensure_topics
from db.engines import make_engine
from db.tables import command_outcomes
from devstack.broker import KafkaBroker
from devstack.server import signal_group
from schemas.topics import Topics
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, running

ANSWER_WITHIN = 6.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        assert broker.pid is not None
        signal_group(broker.pid, signal.SIGCONT)  # a failed test must not leave it frozen
        broker.stop()


def _wait_state(pid: int, wanted: str, timeout: float = 10.0) -> None:
    """Wait until /proc says the process is in `wanted` state ("T": stopped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
        if (state == "T") == (wanted == "T"):
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never reached state {wanted}")


def test_a_frozen_broker_gives_an_honest_503_and_the_retry_has_one_effect(
    own_broker: KafkaBroker, migrated_database_url: str, tmp_path: Path
) -> None:
    topics = Topics(prefix=f"t{uuid.uuid4().hex}")
    ensure_topics(own_broker.bootstrap, topics, 3)
    stack = ChorusStack(
        kafka=own_broker.bootstrap,
        database_url=migrated_database_url,
        topics=topics,
        workdir=tmp_path / "stack",
    )
    with running(stack):
        worker = stack.start("worker")
        stack.wait_worker_ready(worker)
        alice = stack.client(stack.start("commands")).sign_up("alice")
        team_id = alice.new_team()
        path = f"/v1/teams/{team_id}/presence"
        # The producer is connected and knows the partition leaders before the freeze.
        warm = alice.post(path, {"status": "available", "device_id": "d"}, Prefer="wait=10")
        assert warm.status_code == 200, warm.text

        key = f"busy-{uuid.uuid4()}"
        assert own_broker.pid is not None
        signal_group(own_broker.pid, signal.SIGSTOP)
        _wait_state(own_broker.pid, "T")
        try:
            started = time.monotonic()
            unknown = alice.post(
                path, {"status": "busy", "device_id": "d"}, **{"Idempotency-Key": key}
            )
            elapsed = time.monotonic() - started
        finally:
            signal_group(own_broker.pid, signal.SIGCONT)
            _wait_state(own_broker.pid, "R")

        assert unknown.status_code == 503, unknown.text
        assert unknown.json()["error"]["code"] == "outcome_unknown"
        assert "may or may not" in unknown.json()["error"]["message"]
        assert elapsed < ANSWER_WITHIN
        command_id = unknown.json()["command_id"]

        retried = alice.post(
            path,
            {"status": "busy", "device_id": "d"},
            **{"Idempotency-Key": key, "Prefer": "wait=10"},
        )
        assert retried.status_code == 200, retried.text
        assert retried.json()["command_id"] == command_id
        assert retried.json()["status"] == "accepted"
        again = alice.post(path, {"status": "busy", "device_id": "d"}, **{"Idempotency-Key": key})
        assert again.json()["command_id"] == command_id

        sent = read_topic(stack.kafka, topics.commands)
        # The frozen broker appended the first send when it woke; the retry sent it again,
        # unless the worker had already recorded the first one's outcome.
        assert [c["command_id"] for c in sent].count(command_id) in (1, 2)
        events = read_topic(stack.kafka, topics.events)
        effects = [e for e in events if e.get("causation_id") == command_id]
        assert [e["type"] for e in effects] == ["presence.changed"]
        engine = make_engine(migrated_database_url)
        with engine.connect() as conn:
            outcomes = conn.execute(
                sa.select(command_outcomes.c.status).where(
                    command_outcomes.c.command_id == command_id
                )
            ).all()
        engine.dispose()
        assert [row.status for row in outcomes] == ["accepted"]
