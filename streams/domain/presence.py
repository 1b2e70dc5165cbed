"""Presence rules: per device, aggregated per member.

A member's status is the most present of their devices' (available > busy > away), and
offline only when every device is. A device is offline when set so, or when it has not been
heard (set or heartbeat) for the TTL before a `presence.expire` tick; its next heartbeat brings
it back with the status last set on it. Every `presence.set` and every heartbeat emits
`presence.changed` (so each has an outcome and the log holds every time the decider relies
on); expiry ticks emit only when something changed.
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
    """presence.heartbeat: the device was heard now; always recorded, so the log holds every
    time a decider relies on and the heartbeat has an outcome like any other command."""
    user = state.presence.get(user_id)
    devices = dict(user.devices) if user else {}
    previous = devices.get(device_id)
    acting: str | None = device_id
    if previous is None:
        devices[device_id] = Device(status="available", last_seen_ms=now_ms)
    elif previous.expired and now_ms <= previous.last_seen_ms:
        # A copy of the heartbeat that preceded the expiry must not revive the device; no
        # acting device, so folding the event keeps it expired with its status to come back to.
        acting = None
    else:
        devices[device_id] = Device(
            status=previous.status, last_seen_ms=max(now_ms, previous.last_seen_ms)
        )
    last_seen = max(now_ms, user.last_seen_ms) if user else now_ms
    return [presence_changed(user_id, devices, last_seen, acting)]


def expire(state: TeamState, now_ms: int, ttl_ms: int) -> list[Event]:
    """presence.expire: devices unheard for `ttl_ms` go offline; long-offline ones are dropped."""
    events: list[Event] = []
    for user_id in sorted(state.presence):  # sorted: the same order however the state was built
        user = state.presence[user_id]
        devices = _expired_devices(user.devices, now_ms, ttl_ms)
        if devices != user.devices:
            events.append(presence_changed(user_id, devices, user.last_seen_ms, None))
    return events


def _expired_devices(devices: Mapping[str, Device], now_ms: int, ttl_ms: int) -> dict[str, Device]:
    kept = {}
    for device_id, device in devices.items():
        if device.effective == "offline" and device.last_seen_ms < now_ms - DEVICE_RETENTION_MS:
            continue
        # A device set offline has nothing to lose by expiring: it stays as it is.
        stale = device.last_seen_ms < now_ms - ttl_ms
        if stale and not device.expired and device.status != "offline":
            device = msgspec.structs.replace(device, expired=True)
        kept[device_id] = device
    return kept


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
    devices = {
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
    heard = parse_millis(entry.last_seen)
    if entry.status != "offline" or entry.device_id == acting:
        return Device(status=entry.status, last_seen_ms=heard)
    # Offline, and not by its own set: it expired, and keeps the status to come back with.
    if previous is not None and previous.status != "offline":
        return Device(status=previous.status, last_seen_ms=heard, expired=True)
    return Device(status="offline", last_seen_ms=heard)
