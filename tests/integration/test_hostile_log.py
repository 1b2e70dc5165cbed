"""Records any producer may write: a NUL in the log, every Kafka codec, a projector stuck behind,
a record the read-model tables refuse (quarantined).

Records are produced straight to the topics with confluent-kafka, as another producer (or a
mirror that recompresses) would write them, keyed and partitioned as Chorus writes them.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from confluent_kafka import Producer

from db.engines import make_engine
from db.tables import quarantine
from schemas.clock import format_time
from schemas.commands import Command, CommandPayload, SetPresence, StartCall
from schemas.envelope import record_to_bytes
from schemas.mapper import MAPPER
from schemas.text import REPLACEMENT
from streams.domain import TeamState, decide_and_seal
from streams.domain.testing import command
from tests.integration.read_models import stored
from tests.stack import ChorusStack, Client

CODECS = ("gzip", "snappy", "lz4", "zstd")


def produce(stack: ChorusStack, topic: str, records: list[tuple[str, bytes]], codec: str) -> None:
    """Write (key, value) records with `codec`, partitioned by murmur2 as Chorus partitions."""
    producer = Producer(
        {
            "bootstrap.servers": stack.kafka,
            "compression.type": codec,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
        }
    )
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(30) == 0


def sealed_log(team_id: str, steps: list[tuple[str, CommandPayload]]) -> list[tuple[str, bytes]]:
    """A new team's events, decided and sealed as the worker seals them, as records."""
    state, records = TeamState(), []
    for at, (actor, payload) in enumerate(steps):
        made, state = decide_and_seal(
            state, command(actor, payload, at=at, team_id=team_id, command_id=str(uuid.uuid4()))
        )
        records += made
    return [(team_id, record_to_bytes(record)) for record in records]


def raw_command(team_id: str, actor: str, payload: CommandPayload) -> tuple[str, bytes]:
    """A command as the commands service appends it: (its id, its bytes)."""
    command_id = str(uuid.uuid4())
    decided = Command(
        command_id=command_id,
        team_id=team_id,
        actor=actor,
        received_at=format_time(datetime.now(UTC)),
        data=payload,
    )
    return command_id, MAPPER.command_to_bytes(decided)


def outcome(member: Client, command_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = member.get(f"/v1/commands/{command_id}")
        if answer.status_code == 200 and answer.json()["status"] != "pending":
            return dict(answer.json())
        time.sleep(0.1)
    raise AssertionError(f"command {command_id} was never decided")


def projected(stack: ChorusStack, positions: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = stored(stack.database_url).positions
        if all(now.get(team, 0) >= seq for team, seq in positions.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the projector did not reach {positions}: {now}")


def replay(stack: ChorusStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def member(stack: ChorusStack) -> tuple[Client, str]:
    """A member of a team, on a stack with a worker and the commands service."""
    stack.presence_ttl = 3600.0  # no expiry events while the test compares
    stack.wait_worker_ready(stack.start("worker"))
    alice = stack.client(stack.start("commands")).sign_up("alice")
    return alice, alice.new_team()


def test_a_nul_in_the_log_is_stored_replaced_and_the_team_goes_on(
    stack: ChorusStack, member: tuple[Client, str]
) -> None:
    alice, team = member
    assert alice.user_id is not None
    # A command with a NUL, appended by another producer: decided, recorded, projected.
    nul_call = str(uuid.uuid4())
    command_id, value = raw_command(
        team, alice.user_id, StartCall(call_id=nul_call, topic="stand\x00up")
    )
    produce(stack, stack.topics.commands, [(team, value)], "none")
    # Events with NULs written straight to the log, for a team of their own.
    other, someone, other_call = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    log = sealed_log(
        other,
        [
            (someone, StartCall(call_id=other_call, topic="\x00")),
            (someone, SetPresence(status="busy", device_id="lap\x00top")),
        ],
    )
    produce(stack, stack.topics.events, log, "none")

    decided = outcome(alice, command_id)
    assert decided["status"] == "accepted"
    assert decided["events"][0]["data"]["topic"] == f"stand{REPLACEMENT}up"
    # The team goes on: its next command is decided and projected.
    after = alice.post(
        f"/v1/teams/{team}/presence", {"status": "busy", "device_id": "d"}, Prefer="wait=10"
    )
    assert after.status_code == 200, after.text
    projected(stack, {team: int(after.json()["position"]), other: 2})

    models = stored(stack.database_url)
    assert models.calls[nul_call][3]["topic"] == f"stand{REPLACEMENT}up"
    assert models.calls[other_call][3]["topic"] == REPLACEMENT
    devices = models.members[(other, someone)]["devices"]
    assert [d["device_id"] for d in devices] == [f"lap{REPLACEMENT}top"]
    assert models.members[(team, alice.user_id)]["status"] == "busy"
    verified = replay(stack, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_records_of_every_codec_are_decided_projected_exported_and_verified(
    stack: ChorusStack, member: tuple[Client, str]
) -> None:
    alice, team = member
    assert alice.user_id is not None
    commands: dict[str, str] = {}
    teams: dict[str, str] = {}
    for codec in CODECS:
        command_id, value = raw_command(
            team, alice.user_id, SetPresence(status="busy", device_id=codec)
        )
        commands[codec] = command_id
        produce(stack, stack.topics.commands, [(team, value)], codec)
        teams[codec], someone = str(uuid.uuid4()), str(uuid.uuid4())
        log = sealed_log(
            teams[codec],
            [
                (someone, SetPresence(status="away", device_id=codec)),
                (someone, StartCall(call_id=str(uuid.uuid4()), topic=codec)),
            ],
        )
        produce(stack, stack.topics.events, log, codec)

    for codec in CODECS:
        assert outcome(alice, commands[codec])["status"] == "accepted", codec
    projected(stack, {t: 2 for t in teams.values()})
    models = stored(stack.database_url)
    devices = {d["device_id"] for d in models.members[(team, alice.user_id)]["devices"]}
    assert devices == set(CODECS)
    for codec, other in teams.items():
        exported = replay(stack, "export", "--team", other)
        assert exported.returncode == 0, exported.stderr
        lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
        assert [r["seq"] for r in lines] == [1, 2], codec
        assert lines[1]["data"]["topic"] == codec
    verified = replay(stack, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_verify_fails_when_a_read_model_stays_behind_its_log(stack: ChorusStack) -> None:
    # No worker: nothing projects what is written to the log.
    stuck = str(uuid.uuid4())
    produce(
        stack,
        stack.topics.events,
        sealed_log(stuck, [(str(uuid.uuid4()), SetPresence(status="busy", device_id="d"))]),
        "none",
    )
    started = time.monotonic()
    verified = replay(stack, "verify", "--behind-bound", "1")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert (
        f"team {stuck}: live read model at seq 0, log at seq 1: the projector stayed behind "
        "for more than 1 s"
    ) in verified.stdout
    assert verified.stdout.splitlines()[-1].startswith("FAILED: ")
    assert time.monotonic() - started < 60


def test_a_record_the_tables_refuse_is_quarantined_named_and_the_team_goes_on(
    stack: ChorusStack, member: tuple[Client, str]
) -> None:
    alice, team = member
    assert alice.user_id is not None
    # Another producer's command: an id is any short text to the decider, but no UUID to the
    # read-model tables, which refuse the call it starts.
    command_id, value = raw_command(team, alice.user_id, StartCall(call_id="not-a-uuid", topic="t"))
    produce(stack, stack.topics.commands, [(team, value)], "none")
    decided = outcome(alice, command_id)
    assert decided["status"] == "accepted"
    refused_seq = int(decided["events"][0]["seq"])

    after = alice.post(
        f"/v1/teams/{team}/presence", {"status": "busy", "device_id": "d"}, Prefer="wait=10"
    )
    assert after.status_code == 200, after.text
    projected(stack, {team: int(after.json()["position"])})
    assert stored(stack.database_url).members[(team, alice.user_id)]["status"] == "busy"

    engine = make_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(quarantine)).mappings().all()
    finally:
        engine.dispose()
    assert [(r["team_id"], r["seq"], r["type"]) for r in rows] == [
        (team, refused_seq, "call.started")
    ]
    assert "not-a-uuid" in rows[0]["reason"]
    assert orjson.loads(rows[0]["record"])["data"]["call_id"] == "not-a-uuid"

    verified = replay(stack, "verify")
    assert verified.returncode == 1, verified.stdout + verified.stderr
    assert (
        f"team {team}: seq {refused_seq} (call.started, event {rows[0]['event_id']}) "
        "is quarantined: "
    ) in verified.stdout
    assert verified.stdout.splitlines()[-1].startswith("FAILED: ")
