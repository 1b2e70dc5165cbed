"""The media node's view of calls, folded from events: participants, mutes, joins, rooms."""

from __future__ import annotations

import msgspec

from media.call_view import CallView
from schemas.events import (
    CallEnded,
    CallStarted,
    Event,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantMuted,
    PresenceChanged,
    RecordedEvent,
    RoomAllocated,
    RoomReleased,
)

TEAM = "team-1"
CALL = "call-1"


class Log:
    """Events of one team, numbered as the decider numbers them."""

    def __init__(self, view: CallView) -> None:
        self.view = view
        self.seq = 0

    def append(self, data: Event, partition: int = 2) -> bool:
        self.seq += 1
        return self.view.apply(partition, record(self.seq, data))


def record(seq: int, data: Event) -> RecordedEvent:
    return RecordedEvent(
        event_id=f"e{seq}",
        type=data.TYPE,
        version=1,
        team_id=TEAM,
        seq=seq,
        occurred_at="2026-11-23T19:30:00.000Z",
        actor="ann",
        causation_id=f"c{seq}",
        data=data,
        prev_hash="0" * 64,
        hash="0" * 64,
    )


def test_participants_mutes_and_joins_follow_the_log() -> None:
    view = CallView()
    log = Log(view)
    log.append(CallStarted(call_id=CALL, started_by="ann", invitees=("bob",)))
    log.append(ParticipantJoined(call_id=CALL, user_id="bob"))
    log.append(ParticipantMuted(call_id=CALL, user_id="bob", muted=True))
    log.append(ParticipantLeft(call_id=CALL, user_id="bob"))
    log.append(ParticipantJoined(call_id=CALL, user_id="bob"))
    call = view.calls[CALL]
    assert (call.team_id, call.partition, call.started_by) == (TEAM, 2, "ann")
    assert call.participants == {"ann": False, "bob": False}  # a rejoin starts unmuted
    assert call.joins == {"ann": 1, "bob": 2}
    assert view.is_participant(CALL, "bob") and not view.is_participant(CALL, "eve")


def test_a_record_seen_twice_counts_once() -> None:
    view = CallView()
    log = Log(view)
    log.append(CallStarted(call_id=CALL, started_by="ann", invitees=()))
    assert log.append(ParticipantJoined(call_id=CALL, user_id="bob"))
    assert not view.apply(2, record(log.seq, ParticipantJoined(call_id=CALL, user_id="bob")))
    assert view.calls[CALL].joins["bob"] == 1


def test_the_latest_allocation_names_the_room_and_an_ended_call_waits_for_its_release() -> None:
    view = CallView()
    log = Log(view)
    log.append(CallStarted(call_id=CALL, started_by="ann", invitees=()))
    log.append(RoomAllocated(call_id=CALL, node="a", offer_url="http://a/offer"))
    log.append(RoomAllocated(call_id=CALL, node="b", offer_url="http://b/offer"))
    assert [c.call_id for c in view.hosted_by("b")] == [CALL] and view.hosted_by("a") == []
    assert view.calls[CALL].allocations == 2
    log.append(CallEnded(call_id=CALL, reason="ended_by_participant"))
    assert view.hosted_by("b") == []
    assert not view.is_participant(CALL, "ann")
    assert view.calls[CALL].node == "b"  # kept until released
    log.append(RoomReleased(call_id=CALL))
    assert CALL not in view.calls


def test_an_ended_call_without_a_room_is_forgotten_and_unknown_records_are_skipped() -> None:
    view = CallView()
    log = Log(view)
    log.append(CallStarted(call_id=CALL, started_by="ann", invitees=()))
    log.append(CallEnded(call_id=CALL, reason="last_participant_left"))
    assert view.calls == {}
    assert not view.apply_record(0, {"type": "call.teleported", "team_id": TEAM})


def presence(user: str, region: str | None = None) -> PresenceChanged:
    seen = "2026-11-23T19:30:00.000Z"
    changed = PresenceChanged(user_id=user, status="available", devices=[], last_seen=seen)
    return changed if region is None else msgspec.structs.replace(changed, region=region)


def test_each_users_last_reported_region_places_the_calls_they_start() -> None:
    view = CallView()
    log = Log(view)
    log.append(presence("ann", "eu-west"))
    log.append(presence("ann"))  # a heartbeat or expiry: no region, the last one stands
    log.append(presence("bob", "us-east"))
    log.append(presence("bob", "eu-west"))
    log.append(CallStarted(call_id=CALL, started_by="ann", invitees=("bob",)))
    log.append(CallStarted(call_id="call-2", started_by="cat", invitees=()))
    assert view.regions == {"ann": "eu-west", "bob": "eu-west"}
    assert view.region_of(view.calls[CALL]) == "eu-west"
    assert view.region_of(view.calls["call-2"]) is None  # never reported: any region
