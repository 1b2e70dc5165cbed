"""Appends commands to Kafka, keyed by team; a request is answered only after the broker acks."""

from __future__ import annotations

import asyncio

from adapters.producer import Acknowledged, OutcomeUnknown, Refused, TrackedProducer
from schemas.positions import command_position

# librdkafka gives up on a record after this long and the send tracker judges it within two
# statistics reports (0.2 s), so a request that waits longer hears the verdict, with room to
# spare on a busy machine; one that hears none in time reports an unknown outcome.
DELIVERY_TIMEOUT_MS = 3500
ANSWER_WITHIN_SECONDS = 4.8


class KafkaUnavailable(Exception):
    """The command was certainly not appended (never sent to the broker)."""


class AppendOutcomeUnknown(Exception):
    """The command may or may not have been appended: sent, and no acknowledgement in time."""


class CommandPublisher:
    """The commands topic's producer for one process."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._producer = TrackedProducer(
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
            acked = self._producer.send(self.topic, team_id.encode(), value)
        except Refused as exc:
            raise KafkaUnavailable(str(exc)) from exc
        # A timer of its own rather than asyncio.wait_for, which costs a task's worth of work
        # per command: the record stays queued and may still be delivered.
        timer = asyncio.get_running_loop().call_later(ANSWER_WITHIN_SECONDS, _too_late, acked)
        try:
            ack = await acked
        except Refused as exc:
            raise KafkaUnavailable(str(exc)) from exc
        except OutcomeUnknown as exc:
            raise AppendOutcomeUnknown(str(exc)) from exc
        finally:
            timer.cancel()
        return command_position(ack.partition, ack.offset)

    def close(self, timeout: float = 5.0) -> None:
        self._producer.close(timeout)


def _too_late(acked: asyncio.Future[Acknowledged]) -> None:
    if not acked.done():
        acked.set_exception(OutcomeUnknown("Kafka did not acknowledge the command in time"))
