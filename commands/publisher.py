"""Appends commands to Kafka, keyed by team; a request is answered only after the broker acks."""

from __future__ import annotations

import asyncio

from adapters.producer import AsyncProducer, NotAcknowledged
from schemas.positions import command_position

# librdkafka gives up on a record after this long, so a request that waits a little longer
# either sees the acknowledgement or knows the command was not appended.
DELIVERY_TIMEOUT_MS = 4000
ANSWER_WITHIN_SECONDS = 4.8


class KafkaUnavailable(Exception):
    """The broker did not acknowledge in time; the command was not appended."""


class CommandPublisher:
    """The commands topic's producer for one process."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = AsyncProducer(
            bootstrap,
            "command-producer",
            **{
                "message.timeout.ms": DELIVERY_TIMEOUT_MS,
                "socket.connection.setup.timeout.ms": 3000,
            },
        )

    async def append(self, team_id: str, value: bytes) -> str:
        """Append one command and return its position once the broker acknowledged it."""
        try:
            acked = await asyncio.wait_for(
                self._producer.send(self.topic, team_id.encode(), value), ANSWER_WITHIN_SECONDS
            )
        except NotAcknowledged as exc:
            raise KafkaUnavailable(str(exc)) from exc
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge the command in time") from exc
        return command_position(acked.partition, acked.offset)

    def close(self, timeout: float = 5.0) -> None:
        self._producer.close(timeout)
