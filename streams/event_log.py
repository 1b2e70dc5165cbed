"""Reads one partition of the events topic (to rebuild a decider's state) and writes to it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from adapters.producer import AsyncProducer


class EventWriter:
    """Writes a command's events to the partition its command came from."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = AsyncProducer(bootstrap, "event-writer", **{"message.timeout.ms": 30000})

    async def write(self, partition: int, records: list[dict[str, Any]]) -> None:
        """Produce the records in order and return once the broker acknowledged all of them."""
        sent = [
            self._producer.send(
                self.topic, str(record["team_id"]).encode(), orjson.dumps(record), partition
            )
            for record in records
        ]
        await asyncio.gather(*sent)

    def close(self, timeout: float = 10.0) -> None:
        self._producer.close(timeout)
