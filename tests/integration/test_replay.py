"""`chorus replay` on a real stack: a scripted day over HTTP, then export, state and verify.

The day runs through the commands service and a real worker (deciders and projector); the
replay command line runs as a subprocess, as an analyst runs it, against the same topics and
database. What `state --at T` says is checked against the projection folded over the records
that occurred by T, and at the end against the live rm_* tables.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from db.engines import make_engine
from db.tables import JSONB, rm_calls, rm_members, rm_positions
from replay.state import all_states, team_state
from schemas.clock import format_time
from streams.projection import fold_views
from tests.integration.conftest import read_topic
from tests.stack import ChorusStack, Client


def replay(stack: ChorusStack, *args: str, env: dict[str, str] | None = None) -> Any:
    """`chorus replay ...` as a subprocess: the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "replay", *args],
        env=env or stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def instant() -> str:
    """Now, as the contract writes times, clear of the milliseconds around it."""
    time.sleep(0.01)
    now = format_time(datetime.now(UTC))
    time.sleep(0.01)
    return now


class Day:
    """Commands sent through the commands service, each waited for until decided."""

    def __init__(self) -> None:
        self.positions: dict[str, int] = {}  # team -> position of its last decided command

    def send(self, member: Client, team: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = member.post(path, body, Prefer="wait=10")
        assert answer.status_code in (200, 409), answer.text
        decided = dict(answer.json())
        self.positions[team] = int(decided["position"])
        return decided

    def presence(self, member: Client, team: str, status: str, device: str = "laptop") -> None:
        self.send(
            member, team, f"/v1/teams/{team}/presence", {"status": status, "device_id": device}
        )

    def start(self, member: Client, team: str, *invitees: Client) -> str:
        body = {"invitees": [i.user_id for i in invitees], "topic": "standup"}
        return str(self.send(member, team, f"/v1/teams/{team}/calls", body)["call_id"])

    def call(self, member: Client, team: str, call_id: str, action: str, **body: Any) -> None:
        self.send(member, team, f"/v1/calls/{call_id}/{action}", body)


def run_the_day(
    commands: str, stack: ChorusStack
) -> tuple[dict[str, str], list[tuple[str, dict[str, int]]]]:
    """Three teams' day; returns the teams and, at several instants, each team's position."""
    people = {
        name: stack.client(commands).sign_up(name)
        for name in ("ann", "bo", "cy", "di", "ed", "flo")
    }
    ann, bo, cy, di, ed, flo = people.values()
    teams = {"red": ann.new_team(bo, cy), "blue": di.new_team(ed), "solo": flo.new_team()}
    red, blue, solo = teams.values()
    day, instants = Day(), []
    for member, team in ((ann, red), (bo, red), (cy, red), (di, blue), (ed, blue), (flo, solo)):
        day.presence(member, team, "available")
    instants.append((instant(), dict(day.positions)))
    standup = day.start(ann, red, bo, cy)
    day.call(bo, red, standup, "join")
    sync = day.start(di, blue, ed)
    day.presence(cy, red, "busy", device="phone")
    instants.append((instant(), dict(day.positions)))
    day.call(cy, red, standup, "join")
    day.call(bo, red, standup, "mute", muted=True)
    day.call(ann, red, standup, "leave")
    day.call(ed, blue, sync, "join")
    day.call(di, blue, sync, "end")
    day.call(ed, blue, sync, "join")  # rejected: call_ended, an event of the log all the same
    day.presence(flo, solo, "away")
    instants.append((instant(), dict(day.positions)))
    day.call(bo, red, standup, "leave")
    day.call(cy, red, standup, "leave")  # the last one out: the call ends by itself
    day.presence(ann, red, "offline")
    day.start(flo, solo)
    day.presence(di, blue, "busy", device="phone")
    instants.append((instant(), dict(day.positions)))
    return teams, instants


def live_models(database_url: str) -> dict[str, dict[str, Any]]:
    """team -> {"position", "members", "calls"} as the rm_* tables hold them."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            teams: dict[str, dict[str, Any]] = {
                str(row.team_id): {"position": str(row.seq), "members": {}, "calls": {}}
                for row in conn.execute(sa.select(rm_positions))
            }
            for row in conn.execute(sa.select(rm_members)):
                teams[str(row.team_id)]["members"][str(row.user_id)] = row.body
            for row in conn.execute(sa.select(rm_calls)):
                teams[str(row.team_id)]["calls"][str(row.call_id)] = row.body
    finally:
        engine.dispose()
    return teams


def caught_up(stack: ChorusStack, positions: dict[str, int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = live_models(stack.database_url)
        if all(live.get(t, {}).get("position") == str(p) for t, p in positions.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"the projector did not reach {positions}")


@pytest.fixture
def day(stack: ChorusStack) -> tuple[dict[str, str], list[tuple[str, dict[str, int]]]]:
    stack.presence_ttl = 3600.0  # no expiry events in the middle of the comparisons
    stack.wait_worker_ready(stack.start("worker"))
    return run_the_day(stack.start("commands"), stack)


def test_state_at_each_instant_is_the_fold_of_the_log_up_to_it(
    stack: ChorusStack, day: Any
) -> None:
    teams, instants = day
    log = read_topic(stack.kafka, stack.topics.events)
    for at, positions in instants:
        answer = replay(stack, "state", "--at", at)
        assert answer.returncode == 0, answer.stderr
        states = orjson.loads(answer.stdout)
        upto = fold_views(r for r in log if r["occurred_at"] <= at)
        assert states == all_states(upto)
        # The position of each team is that of its last command decided before the instant.
        assert {s["team_id"]: int(s["position"]) for s in states} == {
            team: position for team, position in positions.items()
        }
        one = replay(stack, "state", "--at", at, "--team", teams["red"])
        assert orjson.loads(one.stdout) == team_state(upto[teams["red"]])


def test_state_now_matches_the_live_read_models_and_verify_passes(
    stack: ChorusStack, day: Any
) -> None:
    teams, instants = day
    caught_up(stack, instants[-1][1])
    answer = replay(stack, "state", "--at", "now")
    live = live_models(stack.database_url)
    for state in orjson.loads(answer.stdout):
        stored = live[state["team_id"]]
        assert state["position"] == stored["position"]
        assert {m["user_id"]: m for m in state["presence"]["members"]} == stored["members"]
        assert {c["call_id"]: c for c in state["calls"]} == stored["calls"]
    verified = replay(stack, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.splitlines()[-1].startswith("ok: ")
    one = replay(stack, "verify", "--team", teams["blue"])
    assert one.returncode == 0 and "of 1 teams" in one.stdout


def test_verify_reports_a_live_read_model_that_differs(stack: ChorusStack, day: Any) -> None:
    teams, instants = day
    caught_up(stack, instants[-1][1])
    engine = make_engine(stack.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(rm_members)
            .values(
                body=rm_members.c.body.op("||")(sa.cast(sa.literal('{"status": "away"}'), JSONB))
            )
            .where(
                rm_members.c.team_id == teams["blue"],
                rm_members.c.body["status"].astext == "available",
            )
        )
    engine.dispose()
    verified = replay(stack, "verify")
    assert verified.returncode == 1
    assert f"team {teams['blue']} member " in verified.stdout
    assert 'status: log "available", live "away"' in verified.stdout


def test_an_export_verifies_offline_and_an_edit_or_a_gap_is_named(
    stack: ChorusStack, day: Any, tmp_path: Path
) -> None:
    exported = tmp_path / "day.jsonl"
    answer = replay(stack, "export", "-o", str(exported))
    assert answer.returncode == 0, answer.stderr
    records = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    log = read_topic(stack.kafka, stack.topics.events)
    assert sorted(records, key=lambda r: (r["team_id"], r["seq"])) == sorted(
        log, key=lambda r: (r["team_id"], r["seq"])
    )
    assert [r["occurred_at"] for r in records] == sorted(r["occurred_at"] for r in records)
    assert replay(stack, "verify", "--file", str(exported)).returncode == 0

    lines = exported.read_bytes().splitlines()
    victim = orjson.loads(lines[5])
    edited = {**victim, "actor": "00000000-0000-4000-8000-000000000000"}
    altered = tmp_path / "altered.jsonl"
    altered.write_bytes(b"\n".join([*lines[:5], orjson.dumps(edited), *lines[6:]]) + b"\n")
    answer = replay(stack, "verify", "--file", str(altered))
    assert answer.returncode == 1
    assert (
        f"event {victim['event_id']} (team {victim['team_id']}, seq {victim['seq']}, line 6)"
        in answer.stdout
    )
    assert "bad_hash" in answer.stdout

    gap = tmp_path / "gap.jsonl"
    gap.write_bytes(b"\n".join([*lines[:5], *lines[6:]]) + b"\n")
    answer = replay(stack, "verify", "--file", str(gap))
    assert answer.returncode == 1
    assert "seq_gap" in answer.stdout and f"team {victim['team_id']}" in answer.stdout


def test_an_export_of_one_team_and_one_hour_in_csv(stack: ChorusStack, day: Any) -> None:
    teams, instants = day
    log = read_topic(stack.kafka, stack.topics.events)
    since, until = instants[0][0], instants[2][0]
    answer = replay(
        stack, "export", "--from", since, "--to", until, "--team", teams["red"], "--format", "csv"
    )
    assert answer.returncode == 0, answer.stderr
    rows = answer.stdout.splitlines()
    wanted = [r for r in log if r["team_id"] == teams["red"] and since <= r["occurred_at"] <= until]
    assert rows[0].startswith("event_id,type,version,team_id,seq,occurred_at,")
    assert [row.split(",")[0] for row in rows[1:]] == [r["event_id"] for r in wanted]


def test_what_cannot_run_says_why_in_one_line_and_exits_2(stack: ChorusStack) -> None:
    unknown = replay(stack, "export", "--team", "5e1f2a9c-0000-4000-8000-000000000000")
    assert unknown.returncode == 2 and unknown.stderr.startswith("chorus: there are no events of")
    bad_time = replay(stack, "state", "--at", "yesterday")
    assert bad_time.returncode == 2 and "is not an RFC 3339 date-time" in bad_time.stderr
    no_broker = replay(stack, "export", env={**stack.env(), "CHORUS_KAFKA": "127.0.0.1:9"})
    assert no_broker.returncode == 2 and "does not answer" in no_broker.stderr
    no_database = replay(
        stack,
        "verify",
        env={**stack.env(), "CHORUS_DATABASE_URL": "postgresql+psycopg://x@127.0.0.1:9/x"},
    )
    assert no_database.returncode == 2 and "is unreachable" in no_database.stderr
    for answer in (unknown, bad_time, no_broker, no_database):
        assert len(answer.stderr.strip().splitlines()) == 1, answer.stderr
