"""Presence rules of the decider: per device, aggregated per member, expiring by TTL."""

from __future__ import annotations

import msgspec
import pytest

from schemas.clock import parse_millis
from schemas.commands import ExpirePresence, RecordHeartbeat, SetPresence
from schemas.events import DeviceStatus, PresenceChanged
from schemas.fields import PresenceStatus
from streams.domain import TeamState, aggregate, decide_and_seal, fold, recorded
from streams.domain.state import DEVICE_RETENTION_MS, Device
from streams.domain.testing import at_time, command, given, when

TICK = ExpirePresence()


def set_(status: PresenceStatus, device: str = "d1") -> SetPresence:
    return SetPresence(status=status, device_id=device)


def beat(device: str = "d1") -> RecordHeartbeat:
    return RecordHeartbeat(device_id=device)


def device(device_id: str, status: PresenceStatus, seen_at: float) -> DeviceStatus:
    return DeviceStatus(device_id=device_id, status=status, last_seen=at_time(seen_at))


def test_setting_presence_announces_the_member_with_their_devices() -> None:
    events, state = when(TeamState(), command("alice", set_("busy"), at=3))

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="busy",
            devices=[device("d1", "busy", 3)],
            last_seen=at_time(3),
            device_id="d1",
        )
    ]
    assert state.presence["alice"].devices == {
        "d1": Device(status="busy", last_seen_ms=parse_millis(at_time(3)))
    }


def test_every_set_is_announced_even_when_nothing_changes() -> None:
    state = given(command("alice", set_("available")))

    events, _ = when(state, command("alice", set_("available"), at=1))

    assert [e.status for e in events if isinstance(e, PresenceChanged)] == ["available"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("away", "busy"), "busy"),
        (("away", "available", "busy"), "available"),
        (("offline", "away"), "away"),
        (("offline", "offline"), "offline"),
    ],
)
def test_a_member_is_the_most_present_of_their_devices(
    statuses: tuple[PresenceStatus, ...], expected: PresenceStatus
) -> None:
    sets = [command("alice", set_(s, f"d{i}")) for i, s in enumerate(statuses)]

    events, _ = when(given(*sets[:-1]), sets[-1])

    assert events[0].status == expected  # type: ignore[union-attr]


def test_aggregate_of_no_devices_is_offline() -> None:
    assert aggregate({}) == "offline"


def test_a_heartbeat_from_a_new_device_makes_it_available() -> None:
    events, _ = when(TeamState(), command("alice", beat("d9"), at=2))

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="available",
            devices=[device("d9", "available", 2)],
            last_seen=at_time(2),
            device_id="d9",
        )
    ]


def test_a_heartbeat_from_a_present_device_records_nothing_and_keeps_it_alive() -> None:
    before = given(command("alice", set_("busy"), at=0))

    records, state = decide_and_seal(before, command("alice", beat(), at=25))
    assert records == []
    assert state.presence["alice"].devices["d1"].heard_ms == parse_millis(at_time(25))
    assert recorded(state) == before  # the lease is all that changed

    expired, _ = when(state, command("timer", TICK, at=50), presence_ttl=30)
    assert expired == []  # heard at 25, so not stale at 50 with a 30 s TTL


def test_a_device_whose_heartbeats_stop_expires_as_last_seen_at_its_last_heartbeat() -> None:
    state = given(command("alice", set_("busy"), at=0), command("alice", beat(), at=25))

    events, after = when(state, command("timer", TICK, at=56), presence_ttl=30)

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="offline",
            devices=[device("d1", "offline", 25)],
            last_seen=at_time(25),
            device_id=None,
        )
    ]
    assert after.presence["alice"].devices["d1"].expired


def test_a_late_heartbeat_does_not_move_the_lease_back() -> None:
    state = given(command("alice", set_("busy"), at=0), command("alice", beat(), at=25))

    records, after = decide_and_seal(state, command("alice", beat(), at=10))

    assert records == [] and after.presence["alice"].devices["d1"].heard_ms == parse_millis(
        at_time(25)
    )


def test_a_restored_state_gives_online_devices_a_lease_from_when_it_was_loaded() -> None:
    state = given(command("alice", set_("busy"), at=0), command("bob", set_("away"), at=0))
    restored = msgspec.structs.replace(recorded(state), leases_from_ms=parse_millis(at_time(100)))

    assert when(restored, command("timer", TICK, at=120), presence_ttl=30)[0] == []
    events, _ = when(restored, command("timer", TICK, at=131), presence_ttl=30)
    assert [(e.user_id, e.status) for e in events if isinstance(e, PresenceChanged)] == [
        ("alice", "offline"),
        ("bob", "offline"),
    ]
    # Last seen as the log knows it: the restart is not a sighting.
    assert events[0].last_seen == at_time(0)  # type: ignore[union-attr]


def test_a_restored_lease_does_not_revive_an_expired_device() -> None:
    state = given(command("alice", set_("busy"), at=0), command("timer", TICK, at=31))
    restored = msgspec.structs.replace(state, leases_from_ms=parse_millis(at_time(100)))

    assert restored.presence["alice"].devices["d1"].expired
    assert when(restored, command("timer", TICK, at=101))[0] == []


def test_a_device_unheard_for_the_ttl_goes_offline() -> None:
    state = given(command("alice", set_("busy"), at=0))

    events, after = when(state, command("timer", TICK, at=31), presence_ttl=30)

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="offline",
            devices=[device("d1", "offline", 0)],
            last_seen=at_time(0),
            device_id=None,
        )
    ]
    assert after.presence["alice"].devices["d1"].expired


def test_expiry_at_exactly_the_ttl_waits_for_the_next_tick() -> None:
    state = given(command("alice", set_("busy"), at=0))

    assert when(state, command("timer", TICK, at=30), presence_ttl=30)[0] == []


def test_a_member_stays_present_while_another_device_is() -> None:
    state = given(
        command("alice", set_("away", "phone"), at=0), command("alice", set_("busy", "pc"), at=20)
    )

    events, _ = when(state, command("timer", TICK, at=40), presence_ttl=30)

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="busy",
            devices=[device("pc", "busy", 20), device("phone", "offline", 0)],
            last_seen=at_time(20),
            device_id=None,
        )
    ]


def test_a_tick_with_nothing_to_expire_records_nothing() -> None:
    state = given(command("alice", set_("busy"), at=0))

    records, after = decide_and_seal(state, command("timer", TICK, at=10))

    assert records == [] and after == state


def test_the_tick_may_carry_its_own_ttl() -> None:
    state = given(command("alice", set_("busy"), at=0))

    events, _ = when(state, command("timer", ExpirePresence(ttl_seconds=5), at=6), presence_ttl=30)

    assert [e.status for e in events if isinstance(e, PresenceChanged)] == ["offline"]


def test_a_heartbeat_brings_an_expired_device_back_with_its_last_status() -> None:
    state = given(command("alice", set_("busy"), at=0), command("timer", TICK, at=31))

    events, _ = when(state, command("alice", beat(), at=40))

    assert events == [
        PresenceChanged(
            user_id="alice",
            status="busy",
            devices=[device("d1", "busy", 40)],
            last_seen=at_time(40),
            device_id="d1",
        )
    ]


def test_a_copy_of_an_old_heartbeat_does_not_revive_an_expired_device() -> None:
    state = given(
        command("alice", beat(), at=0),
        command("alice", beat(), at=20),
        command("timer", TICK, at=51),
    )
    assert state.presence["alice"].devices["d1"].last_seen_ms == parse_millis(at_time(20))

    records, after = decide_and_seal(state, command("alice", beat(), at=20))

    assert records == []
    assert after.presence["alice"].devices["d1"].expired


def test_a_device_set_offline_stays_offline_through_heartbeats_and_ticks() -> None:
    state = given(command("alice", set_("offline"), at=0))

    beats, _ = when(state, command("alice", beat(), at=5))
    assert beats == []
    assert when(state, command("timer", TICK, at=100))[0] == []


def test_setting_a_device_offline_makes_the_member_offline_when_it_was_the_last() -> None:
    state = given(command("alice", set_("available"), at=0))

    events, _ = when(state, command("alice", set_("offline"), at=1))

    assert events[0] == PresenceChanged(
        user_id="alice",
        status="offline",
        devices=[device("d1", "offline", 1)],
        last_seen=at_time(1),
        device_id="d1",
    )


def test_a_device_offline_for_a_day_is_forgotten() -> None:
    day = DEVICE_RETENTION_MS / 1000
    state = given(command("alice", set_("busy"), at=0), command("timer", TICK, at=31))

    events, after = when(state, command("timer", TICK, at=day + 1))

    assert events == [
        PresenceChanged(
            user_id="alice", status="offline", devices=[], last_seen=at_time(0), device_id=None
        )
    ]
    assert "alice" not in after.presence


def test_folding_the_records_gives_the_decider_state() -> None:
    commands = [
        command("alice", set_("busy", "pc"), at=0),
        command("alice", set_("offline", "phone"), at=1),
        command("bob", beat("tab"), at=2),
        command("timer", TICK, at=40),
        command("alice", beat("pc"), at=50),
        command("alice", set_("away", "phone"), at=51),
    ]
    state, records = TeamState(), []
    for each in commands:
        new_records, state = decide_and_seal(state, each)
        records += new_records

    assert fold(records) == recorded(state)
    pc = state.presence["alice"].devices["pc"]
    assert (pc.status, pc.expired) == ("busy", False)
    assert state.presence["bob"].devices["tab"].expired


def test_a_reported_region_is_passed_on_and_absent_when_not_reported() -> None:
    with_region = SetPresence(status="available", device_id="d1", region="eu-west")
    events, state = when(TeamState(), command("alice", with_region, at=1))
    assert [e.region for e in events if isinstance(e, PresenceChanged)] == ["eu-west"]
    (sealed,), _ = decide_and_seal(state, command("alice", set_("busy"), at=2))
    assert "region" not in sealed["data"]  # absent, not null: records without it stay as they were
    (beat_event,), _ = when(state, command("alice", beat("d2"), at=3))
    assert isinstance(beat_event, PresenceChanged)
    assert beat_event.region is msgspec.UNSET
