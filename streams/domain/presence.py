"""Presence rules: per device, aggregated per member; a heartbeat refreshes a lease.

A member's status is the most present of their devices' (available > busy > away), and
offline only when every device is. A device is offline when set so, or when its lease ran out
(not heard, by set or heartbeat, for the TTL) before a `presence.expire` tick; its next
heartbeat brings it back with the status last set on it. Every `presence.set` emits
`presence.changed`; a heartbeat emits it only when a person would see a change (a device first
heard, or back after expiry), else it refreshes the device's lease in the state alone (`heard`);
expiry ticks emit only when something changed.

Events hold only what the log already implies (each device's recorded `last_seen`, the
command's time), so re-deciding a command gives the same records. Only which devices an expiry
tick finds stale, and the `last_seen` it records for them (their last heartbeat), depend on
leases; see `streams.decider` for why re-deciding a tick after a crash is safe.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from schemas.clock import format_millis, parse_millis
from schemas.events import DeviceStatus, Event, PresenceChanged
from schemas.fields import PresenceStatus
from streams.domain.state import DEVICE_RETENTION_MS, Device, TeamState, UserPresence

_RANK: dict[PresenceStatus, int] = {"available": 3, "busy": 2, "away": 1, "offline": 0}


def aggregate(devices: Mapping[str, Device]) -> PresenceStatus:
    """The member's status: the most present of their devices', offline if none is online."""
    return max((d.effective for d in devices.values()), key=_RANK.__getitem__, default="offline")


def set_presence(
    state: TeamState,
    user_id: str,
    device_id: str,
    status: PresenceStatus,
    now_ms: int,
    region: str | msgspec.UnsetType = msgspec.UNSET,
) -> list[Event]:
    """presence.set: the device takes `status` and is heard now; a reported region is passed on
    (it is not team state: only the media tier reads it)."""
    user = state.presence.get(user_id)
    devices = dict(user.devices) if user else {}
    previous = devices.get(device_id)
    # Log order wins over clock order, but a late command never moves last_seen backwards.
    heard = max(now_ms, previous.last_seen_ms) if previous else now_ms
    devices[device_id] = Device(status=status, last_seen_ms=heard)
    last_seen = max(now_ms, user.last_seen_ms) if user else now_ms
    changed = presence_changed(user_id, devices, last_seen, device_id)
    return [msgspec.structs.replace(changed, region=region)]


def heartbeat(state: TeamState, user_id: str, device_id: str, now_ms: int) -> list[Event]:
    """presence.heartbeat: an event only for a device first heard or back after expiry (its
    lease is refreshed by `heard`, after the events)."""
    user = state.presence.get(user_id)
    devices = dict(user.devices) if user else {}
    previous = devices.get(device_id)
    if previous is None:
        devices[device_id] = Device(status="available", last_seen_ms=now_ms)
    elif previous.expired and now_ms > previous.last_seen_ms:
        devices[device_id] = Device(status=previous.status, last_seen_ms=now_ms)
    else:
        # Online (or set offline): nothing a person sees changes. Expired, and not newer than
        # its last heartbeat (which the expiry recorded): a copy of that one does not revive it.
        return []
    last_seen = max(now_ms, user.last_seen_ms) if user else now_ms
    return [presence_changed(user_id, devices, last_seen, device_id)]


def heard(state: TeamState, user_id: str, device_id: str, now_ms: int) -> TeamState:
    """The state with the device's lease refreshed by a heartbeat at `now_ms` (no event)."""
    user = state.presence.get(user_id)
    device = user.devices.get(device_id) if user else None
    if user is None or device is None or device.expired or device.heard_ms >= now_ms:
        return state
    devices = {**user.devices, device_id: msgspec.structs.replace(device, heard_ms=now_ms)}
    presence = {**state.presence, user_id: msgspec.structs.replace(user, devices=devices)}
    return msgspec.structs.replace(state, presence=presence)


def lease_ran_out(state: TeamState, device: Device, now_ms: int, ttl_ms: int) -> bool:
    """Whether an online device was not heard for `ttl_ms` before `now_ms` (counting a restored
    state's fresh lease)."""
    if device.effective == "offline":
        return False
    renewed = max(device.last_seen_ms, device.heard_ms, state.leases_from_ms)
    return renewed < now_ms - ttl_ms


def expire(state: TeamState, now_ms: int, ttl_ms: int) -> list[Event]:
    """presence.expire: devices whose lease ran out go offline (recorded as last seen at their
    last heartbeat); long-offline ones are dropped."""
    events: list[Event] = []
    for user_id in sorted(state.presence):  # sorted: the same order however the state was built
        user = state.presence[user_id]
        devices = _expired_devices(state, user.devices, now_ms, ttl_ms)
        if devices is not None:
            last_seen = max([user.last_seen_ms, *(d.last_seen_ms for d in devices.values())])
            events.append(presence_changed(user_id, devices, last_seen, None))
    return events


def _expired_devices(
    state: TeamState, devices: Mapping[str, Device], now_ms: int, ttl_ms: int
) -> dict[str, Device] | None:
    """The devices after expiry, or None when none changes."""
    kept, changed = {}, False
    for device_id, device in devices.items():
        if device.effective == "offline" and device.last_seen_ms < now_ms - DEVICE_RETENTION_MS:
            changed = True
            continue
        # A device set offline has nothing to lose by expiring: it stays as it is.
        if lease_ran_out(state, device, now_ms, ttl_ms):
            heard = max(device.last_seen_ms, device.heard_ms)
            device = Device(status=device.status, last_seen_ms=heard, expired=True)
            changed = True
        kept[device_id] = device
    return kept if changed else None


def presence_changed(
    user_id: str, devices: Mapping[str, Device], last_seen_ms: int, device_id: str | None
) -> PresenceChanged:
    """The event describing a member with these devices."""
    return PresenceChanged(
        user_id=user_id,
        status=aggregate(devices),
        devices=[
            DeviceStatus(
                device_id=key,
                status=device.effective,
                last_seen=format_millis(device.last_seen_ms),
            )
            for key, device in sorted(devices.items())
        ],
        last_seen=format_millis(last_seen_ms),
        device_id=device_id,
    )


def apply_presence_changed(state: TeamState, event: PresenceChanged) -> TeamState:
    """Fold a presence.changed into the state (the inverse of `presence_changed`)."""
    presence = dict(state.presence)
    if not event.devices:
        presence.pop(event.user_id, None)
        return msgspec.structs.replace(state, presence=presence)
    previous = state.presence.get(event.user_id)
    devices = {  # a lease of a device the event does not change stays as it was
        entry.device_id: _device_from_entry(
            entry, previous.devices.get(entry.device_id) if previous else None, event.device_id
        )
        for entry in event.devices
    }
    presence[event.user_id] = UserPresence(
        devices=devices, last_seen_ms=parse_millis(event.last_seen)
    )
    return msgspec.structs.replace(state, presence=presence)


def _device_from_entry(entry: DeviceStatus, previous: Device | None, acting: str | None) -> Device:
    seen = parse_millis(entry.last_seen)
    if entry.status != "offline" or entry.device_id == acting:
        lease = previous.heard_ms if previous is not None and not previous.expired else 0
        return Device(status=entry.status, last_seen_ms=seen, heard_ms=lease)
    # Offline, and not by its own set: it expired, and keeps the status to come back with.
    if previous is not None and previous.status != "offline":
        return Device(status=previous.status, last_seen_ms=seen, expired=True)
    return Device(status="offline", last_seen_ms=seen)
