"""What a media node writes to Kafka: commands for the team deciders, and its heartbeats.

Commands go to the commands topic keyed by team, in the command envelope of the schemas
mapper, as the commands service sends them; their ids are chosen by the caller (deterministic
where a repeat must be recorded once).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from adapters.producer import AsyncProducer, NotAcknowledged
from media.directory import NodeStatus
from schemas.clock import format_time
from schemas.commands import Command, CommandPayload
from schemas.mapper import MAPPER
from schemas.topics import Topics

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_MS = 4000
COMMAND_ATTEMPTS = 3  # a command not acknowledged is sent again: its id makes it count once


class Outbox:
    """One idempotent producer for the node's commands and heartbeats."""

    def __init__(self, bootstrap: str, topics: Topics) -> None:
        self._topics = topics
        self._producer = AsyncProducer(
            bootstrap, "media-producer", **{"message.timeout.ms": DELIVERY_TIMEOUT_MS}
        )
        self._inflight: set[asyncio.Task[None]] = set()

    def command(self, team_id: str, command_id: str, actor: str, payload: CommandPayload) -> None:
        """Append a command in the background, sent again (same id) if not acknowledged; the
        last failure is logged. Every command of the media tier has a deterministic id, so a
        copy that did land after all is decided once."""
        command = Command(
            command_id=command_id,
            team_id=team_id,
            actor=actor,
            received_at=format_time(datetime.now(UTC)),
            data=payload,
        )
        value = MAPPER.command_to_bytes(command)
        task = asyncio.ensure_future(
            self._append(self._topics.commands, team_id, value, COMMAND_ATTEMPTS)
        )
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def heartbeat(self, status: NodeStatus) -> None:
        await self._append(self._topics.media_nodes, status.node_id, status.to_bytes())

    async def forget(self, node_id: str) -> None:
        """A tombstone: a node that stopped cleanly leaves the compacted directory."""
        await self._append(self._topics.media_nodes, node_id, None)

    async def _append(self, topic: str, key: str, value: bytes | None, attempts: int = 1) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await self._producer.send(topic, key.encode(), value)
                return
            except NotAcknowledged as exc:
                if attempt == attempts:
                    log.warning("media: a record for %s was not appended: %s", topic, exc)

    async def close(self) -> None:
        """Deliver what is in flight (bounded), then stop the producer."""
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5.0)
        await asyncio.to_thread(self._producer.close)
