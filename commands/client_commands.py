"""Client commands: validated, authorised, then appended to Kafka keyed by team (202 after ack)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.memberships import role_in_team, team_of_call
from commands import idempotency
from commands.outcomes import Expected
from commands.publisher import AppendOutcomeUnknown, KafkaUnavailable
from commands.state import commands_state
from db.outcomes import load_outcome, outcome_body
from db.tables import call_directory, memberships
from schemas import bodies
from schemas.clock import format_time
from schemas.commands import (
    Command,
    CommandPayload,
    EndCall,
    JoinCall,
    LeaveCall,
    RecordHeartbeat,
    SetMuted,
    SetPresence,
    StartCall,
)
from schemas.mapper import MAPPER
from web.auth import caller
from web.bodies import decode_body, read_limited
from web.errors import Problem
from web.paths import path_uuid

MAX_WAIT_SECONDS = 10.0
CALL_ID_NAMESPACE = uuid.UUID("6f1c2a52-4d0e-4d8e-9a53-5b0c1f7e9d21")


@dataclass(frozen=True)
class Submission:
    team_id: str
    user_id: str
    payload: CommandPayload
    extra: dict[str, Any]


class _CommandIds:
    """Random (version 4) UUIDs as text, from a pool of the OS's random bytes: a system call
    per 256 ids rather than one per command."""

    BATCH = 256

    def __init__(self) -> None:
        self._pool = b""
        self._used = 0

    def __call__(self) -> str:
        if self._used >= len(self._pool):
            self._pool, self._used = os.urandom(16 * self.BATCH), 0
        raw = bytearray(self._pool[self._used : self._used + 16])
        self._used += 16
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
        text = raw.hex()
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


new_command_id = _CommandIds()


def call_id_for(command_id: str) -> str:
    """The call a start command creates follows from its id, so a repeat names the same call."""
    return str(uuid.uuid5(CALL_ID_NAMESPACE, command_id))


async def _ensure_member(request: Request, team_id: str, user_id: str) -> None:
    # Memberships only ever begin, so a member once seen is remembered (for a while).
    state = commands_state(request)
    if (team_id, user_id) in state.members:
        return
    async with state.autocommit.connect() as conn:
        state.members[team_id, user_id] = await role_in_team(conn, team_id, user_id)


async def _member_team(request: Request, user_id: str) -> str:
    team_id = path_uuid(request, "team_id")
    await _ensure_member(request, team_id, user_id)
    return team_id


async def _call_team(request: Request, user_id: str) -> tuple[str, str]:
    call_id = path_uuid(request, "call_id")
    state = commands_state(request)
    team_id = state.call_teams.get(call_id)  # a call never changes team
    if team_id is None:
        async with state.autocommit.connect() as conn:
            team_id = await team_of_call(conn, call_id)
        state.call_teams[call_id] = team_id
    await _ensure_member(request, team_id, user_id)
    return call_id, team_id


async def set_presence(request: Request) -> Response:
    user_id = caller(request)
    team_id = await _member_team(request, user_id)
    body = await decode_body(request, bodies.SetPresenceBody)
    region = msgspec.UNSET if body.region is None else body.region
    payload = SetPresence(status=body.status, device_id=body.device_id, region=region)
    return await submit(request, Submission(team_id, user_id, payload, {}))


async def heartbeat(request: Request) -> Response:
    user_id = caller(request)
    team_id = await _member_team(request, user_id)
    body = await decode_body(request, bodies.HeartbeatBody)
    payload = RecordHeartbeat(device_id=body.device_id)
    return await submit(request, Submission(team_id, user_id, payload, {}))


async def start_call(request: Request) -> Response:
    user_id = caller(request)
    team_id = await _member_team(request, user_id)
    body = await decode_body(request, bodies.StartCallBody)
    await _check_invitees(request, team_id, body.invitees)
    # The call id is fixed by the command id inside `submit`.
    payload = StartCall(call_id=str(uuid.UUID(int=0)), invitees=body.invitees, topic=body.topic)
    return await submit(request, Submission(team_id, user_id, payload, {}))


async def _check_invitees(request: Request, team_id: str, invitees: tuple[str, ...]) -> None:
    if not invitees:
        return
    async with commands_state(request).autocommit.connect() as conn:
        found = set(
            (
                await conn.execute(
                    sa.select(sa.cast(memberships.c.user_id, sa.Text)).where(
                        memberships.c.team_id == team_id,
                        sa.cast(memberships.c.user_id, sa.Text).in_(list(invitees)),
                    )
                )
            ).scalars()
        )
    strangers = [user for user in invitees if user not in found]
    if strangers:
        raise Problem(
            422, "invalid_body", f"invitees must be members of the team: {strangers[0]} is not"
        )


def _call_command(kind: str) -> Any:
    async def handle(request: Request) -> Response:
        user_id = caller(request)
        call_id, team_id = await _call_team(request, user_id)
        payload: CommandPayload
        if kind == "join":
            await decode_body(request, bodies.JoinBody)
            payload = JoinCall(call_id=call_id)
        elif kind == "leave":
            await decode_body(request, bodies.LeaveBody)
            payload = LeaveCall(call_id=call_id)
        elif kind == "mute":
            mute = await decode_body(request, bodies.MuteBody)
            payload = SetMuted(call_id=call_id, muted=mute.muted)
        else:
            await decode_body(request, bodies.EndBody)
            payload = EndCall(call_id=call_id)
        return await submit(request, Submission(team_id, user_id, payload, {}))

    handle.__name__ = f"{kind}_call"
    return handle


async def submit(request: Request, submission: Submission) -> Response:
    """Append the command (once per Idempotency-Key), then answer 202 or, if asked, the outcome."""
    engine = commands_state(request).autocommit  # each statement on a key stands alone
    key = idempotency.validate_key(request.headers.get("idempotency-key"))
    wait = _requested_wait(request)
    command_id = new_command_id()
    if key is None:
        # Waited for from before the append: the decision's notification is then the answer.
        with commands_state(request).outcomes.expecting(command_id, wait > 0) as expected:
            try:
                answer = await _append(request, submission, command_id)
            except _OutcomeUnknown as unknown:
                return _outcome_unknown(unknown.answer)
            return await _answer(request, answer, wait, expected)
    fingerprint = idempotency.request_fingerprint(
        request.method, request.url.path, await read_limited(request)
    )
    try:
        claim = await idempotency.claim(engine, submission.user_id, key, fingerprint, command_id)
    except idempotency.KeyReleased:
        claim = idempotency.Claim(command_id=command_id, answer=None, owner=True)
    if claim.answer is not None:
        return await _answer(request, claim.answer, wait)
    try:
        answer = await _append_claimed(request, submission, claim)
    except _OutcomeUnknown as unknown:
        await idempotency.remember_unknown(engine, submission.user_id, key, claim.command_id)
        return _outcome_unknown(unknown.answer)
    except Problem:
        if claim.owner and not claim.resend:
            await idempotency.release(engine, submission.user_id, key, claim.command_id)
        raise
    if claim.owner:
        await idempotency.remember_answer(engine, submission.user_id, key, answer)
    return await _answer(request, answer, wait)


class _OutcomeUnknown(Exception):
    """The command was sent and not acknowledged: it may or may not be in the log."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer["command_id"])
        self.answer = answer


def _outcome_unknown(answer: dict[str, Any]) -> Response:
    command_id = answer["command_id"]
    message = (
        f"Kafka did not confirm command {command_id} in time: it may or may not have been "
        "applied. Retrying with the same Idempotency-Key is safe (the same command, decided "
        f"at most once); without one, look it up with GET /v1/commands/{command_id}"
    )
    body = {"error": {"code": "outcome_unknown", "message": message}, **answer}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


async def _append_claimed(
    request: Request, submission: Submission, claim: idempotency.Claim
) -> dict[str, Any]:
    """Append the claimed command; after an unknown outcome, only if it is not known yet."""
    if claim.resend:
        row = await load_outcome(commands_state(request).autocommit, claim.command_id)
        if row is not None and row.command_position is not None:  # it was appended after all
            return {**_ids(submission, claim.command_id), "position": row.command_position}
    return await _append(request, submission, claim.command_id)


def _ids(submission: Submission, command_id: str) -> dict[str, Any]:
    """The ids a command's answer names: its own, and the call a start creates."""
    if isinstance(submission.payload, StartCall):
        return {"command_id": command_id, "call_id": call_id_for(command_id)}
    return {"command_id": command_id}


async def _append(request: Request, submission: Submission, command_id: str) -> dict[str, Any]:
    state = commands_state(request)
    if state.backlog.full():
        raise Problem(
            503,
            "overloaded",
            f"{len(state.backlog)} commands sent here are not decided yet (the limit): the "
            "deciders are behind or down; nothing was changed, retry in a second",
            {"Retry-After": "1"},
        )
    payload = submission.payload
    answer = _ids(submission, command_id)
    if isinstance(payload, StartCall):
        call_id = answer["call_id"]
        payload = msgspec.structs.replace(payload, call_id=call_id)
        async with state.autocommit.begin() as conn:
            await conn.execute(
                insert(call_directory)
                .values(call_id=call_id, team_id=submission.team_id)
                .on_conflict_do_nothing()
            )
    command = Command(
        command_id=command_id,
        team_id=submission.team_id,
        actor=submission.user_id,
        received_at=format_time(datetime.now(UTC)),
        data=payload,
    )
    state.backlog.add(command_id)
    try:
        position = await state.publisher.append(
            submission.team_id, MAPPER.command_to_bytes(command)
        )
    except KafkaUnavailable as exc:
        state.backlog.discard(command_id)
        raise Problem(503, "kafka_unavailable", f"{exc}; nothing was changed") from exc
    except AppendOutcomeUnknown as exc:
        state.backlog.discard(command_id)  # if it is in the log after all, it is decided
        raise _OutcomeUnknown(answer) from exc
    answer["position"] = position
    state.pending.record(command_id, submission.team_id, submission.user_id, position)
    return answer


def _requested_wait(request: Request) -> float:
    """Seconds asked for by `Prefer: wait=N` (at most 10), or 0."""
    prefer = request.headers.get("prefer")
    if not prefer:
        return 0.0
    for preference in prefer.split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "wait":
            try:
                return max(0.0, min(float(value.strip()), MAX_WAIT_SECONDS))
            except ValueError as exc:
                raise Problem(400, "bad_prefer", "Prefer: wait=N takes a number") from exc
    return 0.0


def _accepted(answer: dict[str, Any]) -> Response:
    """202 with the command's ids and position (orjson: the answer every command gives)."""
    return Response(orjson.dumps(answer), status_code=202, media_type="application/json")


async def _answer(
    request: Request, answer: dict[str, Any], wait: float, expected: Expected | None = None
) -> Response:
    if wait <= 0:
        return _accepted(answer)
    row = await commands_state(request).outcomes.wait(answer["command_id"], wait, expected)
    if row is None:
        return _accepted({**answer, "status": "pending"})
    if row.status == "rejected":
        # The call this command would have created does not exist: the body names only the
        # call the rejection names (for `already_in_call`, the one the user is already in).
        decided = {**{k: v for k, v in answer.items() if k != "call_id"}, **outcome_body(row)}
        decided.pop("events", None)
        return JSONResponse(decided, status_code=409)
    decided = {**answer, **outcome_body(row)}
    return JSONResponse(decided, status_code=200)


async def get_command(request: Request) -> Response:
    user_id = caller(request)
    command_id = path_uuid(request, "command_id")
    row = await load_outcome(commands_state(request).autocommit, command_id)
    if row is None or str(row.actor) != user_id:
        raise Problem(404, "unknown_command", "no command with this id is yours")
    return JSONResponse(outcome_body(row))


routes = [
    Route("/v1/teams/{team_id}/presence", set_presence, methods=["POST"]),
    Route("/v1/teams/{team_id}/presence/heartbeat", heartbeat, methods=["POST"]),
    Route("/v1/teams/{team_id}/calls", start_call, methods=["POST"]),
    Route("/v1/calls/{call_id}/join", _call_command("join"), methods=["POST"]),
    Route("/v1/calls/{call_id}/leave", _call_command("leave"), methods=["POST"]),
    Route("/v1/calls/{call_id}/mute", _call_command("mute"), methods=["POST"]),
    Route("/v1/calls/{call_id}/end", _call_command("end"), methods=["POST"]),
    Route("/v1/commands/{command_id}", get_command, methods=["GET"]),
]
