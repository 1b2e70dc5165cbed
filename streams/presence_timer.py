"""The presence timer: a `presence.expire` command for each team with a lease that ran out.

Each look at a team notes when its earliest lease can run out at the soonest; the timer looks
at the team's devices again only from then. That time only moves later as the state changes (a
heartbeat renews a lease, a new device's lease starts now, a restored partition's leases start
when it was loaded), so skipping a team until then never misses an expiry, and 10,000 devices
beating every 10 s are looked at a few times a minute instead of twice a second.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.clock import format_time, parse_millis
from schemas.commands import Command, ExpirePresence
from schemas.mapper import MAPPER
from streams.domain import TeamState
from streams.domain.presence import lease_ran_out

PRESENCE_TIMER_ACTOR = "system:presence-timer"


def presence_timer_interval(presence_ttl: float) -> float:
    """How often the presence timer looks for leases that ran out: a device goes offline at most
    this long after its TTL (plus the expiry's way to the screens). A look skips every team whose
    leases cannot have run out yet, so it costs little; at 0.5 s, silenced devices went offline
    up to 31.07 s after their last heartbeat with a 30 s TTL (bench.heartbeats), the goal 31 s."""
    return min(0.25, max(0.1, presence_ttl / 3))


class PresenceTimer:
    """Looks for leases that ran out in the teams loaded, each team only once it may have one."""

    def __init__(
        self, loaded: Callable[[], dict[int, dict[str, TeamState]]], presence_ttl: float
    ) -> None:
        self._loaded = loaded  # the states of the teams loaded, by partition
        self._ttl_ms = int(presence_ttl * 1000)
        self._presence_ttl = presence_ttl
        self._due: dict[str, int] = {}  # team -> epoch ms before which no lease can run out

    def expired_teams(self, now_ms: int) -> list[str]:
        """The loaded teams with a device whose lease ran out by `now_ms`."""
        due: dict[str, int] = {}
        expired = []
        for teams in list(self._loaded().values()):
            for team_id, state in list(teams.items()):
                soonest = self._due.get(team_id, 0)
                if soonest > now_ms:
                    due[team_id] = soonest
                elif _has_expired_device(state, now_ms, self._ttl_ms):
                    expired.append(team_id)  # looked at again next time: its command may wait
                else:
                    due[team_id] = _soonest_expiry(state, self._ttl_ms)
        self._due = due
        return expired

    async def tick(self, topic: Any) -> None:
        """Append a `presence.expire` command for each team with a device past its TTL."""
        now = datetime.now(UTC)
        now_ms = parse_millis(format_time(now))
        for team_id in self.expired_teams(now_ms):
            command = Command(
                command_id=_timer_command_id(team_id, now_ms),
                team_id=team_id,
                actor=PRESENCE_TIMER_ACTOR,
                received_at=format_time(now),
                data=ExpirePresence(ttl_seconds=self._presence_ttl),
            )
            await topic.send(key=team_id.encode(), value=MAPPER.command_to_bytes(command))


def _has_expired_device(state: TeamState, now_ms: int, ttl_ms: int) -> bool:
    return any(
        lease_ran_out(state, device, now_ms, ttl_ms)
        for user in state.presence.values()
        for device in user.devices.values()
    )


def _soonest_expiry(state: TeamState, ttl_ms: int) -> int:
    """The epoch ms from which a lease of the team's online devices may have run out (as
    `lease_ran_out` judges: renewed before now - TTL), if no heartbeat renews it before."""
    renewed = [
        max(device.last_seen_ms, device.heard_ms, state.leases_from_ms)
        for user in state.presence.values()
        for device in user.devices.values()
        if device.effective != "offline"
    ]
    return min(renewed, default=2**62) + ttl_ms + 1


def _timer_command_id(team_id: str, now_ms: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chorus:presence-expire/{team_id}/{now_ms}"))
