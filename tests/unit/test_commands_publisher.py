"""Appending a command: keyed by team, answered with its position, or not appended at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.producer import Acknowledged, OutcomeUnknown, Refused
from commands import publisher
from commands.publisher import AppendOutcomeUnknown, CommandPublisher, KafkaUnavailable
from schemas.positions import CommandPosition, parse_position

TEAM = "0b7e6a52-9f3c-4c1e-8d2a-5e4f3a2b1c0d"


class FakeProducer:
    """adapters.producer.TrackedProducer's interface; each send settles as `outcome` says."""

    instances: list[FakeProducer] = []

    def __init__(self, bootstrap: str, name: str, **config: Any) -> None:
        self.bootstrap, self.name, self.config = bootstrap, name, config
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.outcome: Acknowledged | Exception = Acknowledged(partition=2, offset=41)
        self.refuse_to_queue = False
        self.closed_within: float | None = None
        FakeProducer.instances.append(self)

    def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int | None = None
    ) -> asyncio.Future[Acknowledged]:
        if self.refuse_to_queue:
            raise Refused("the producer's queue is full")
        self.sent.append((topic, key, value))
        done: asyncio.Future[Acknowledged] = asyncio.get_running_loop().create_future()
        if isinstance(self.outcome, Exception):
            done.set_exception(self.outcome)
        else:
            done.set_result(self.outcome)
        return done

    def close(self, timeout: float = 5.0) -> None:
        self.closed_within = timeout


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.instances = []
    monkeypatch.setattr(publisher, "TrackedProducer", FakeProducer)
    return FakeProducer


def _publisher(fake_producer: type[FakeProducer]) -> tuple[CommandPublisher, FakeProducer]:
    appender = CommandPublisher("broker:9092", "chorus.commands")
    return appender, fake_producer.instances[-1]


async def test_a_command_is_keyed_by_its_team_and_answered_with_its_position(
    fake_producer: type[FakeProducer],
) -> None:
    appender, producer = _publisher(fake_producer)

    position = await appender.append(TEAM, b"command")

    assert producer.sent == [("chorus.commands", TEAM.encode(), b"command")]
    assert parse_position(position) == CommandPosition(partition=2, offset=41)


def test_the_producer_gives_up_before_the_request_stops_waiting(
    fake_producer: type[FakeProducer],
) -> None:
    _, producer = _publisher(fake_producer)

    assert producer.bootstrap == "broker:9092"
    delivery_timeout = producer.config["message.timeout.ms"] / 1000
    assert delivery_timeout < publisher.ANSWER_WITHIN_SECONDS


async def test_a_record_the_broker_refused_was_not_appended(
    fake_producer: type[FakeProducer],
) -> None:
    appender, producer = _publisher(fake_producer)
    producer.outcome = Refused("Kafka refused the record: never sent")

    with pytest.raises(KafkaUnavailable, match="never sent"):
        await appender.append(TEAM, b"command")


async def test_a_record_sent_but_not_acknowledged_has_an_unknown_outcome(
    fake_producer: type[FakeProducer],
) -> None:
    appender, producer = _publisher(fake_producer)
    producer.outcome = OutcomeUnknown("sent, no acknowledgement")

    with pytest.raises(AppendOutcomeUnknown, match="no acknowledgement"):
        await appender.append(TEAM, b"command")


async def test_a_record_the_producer_could_not_queue_was_not_appended(
    fake_producer: type[FakeProducer],
) -> None:
    appender, producer = _publisher(fake_producer)
    producer.refuse_to_queue = True

    with pytest.raises(KafkaUnavailable, match="queue is full"):
        await appender.append(TEAM, b"command")
    assert producer.sent == []


def test_closing_flushes_the_producer_within_the_bound(
    fake_producer: type[FakeProducer],
) -> None:
    appender, producer = _publisher(fake_producer)

    appender.close(1.5)

    assert producer.closed_within == 1.5


async def test_a_record_never_acknowledged_in_time_has_an_unknown_outcome(
    fake_producer: type[FakeProducer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "ANSWER_WITHIN_SECONDS", 0.01)
    appender, producer = _publisher(fake_producer)
    never: asyncio.Future[Acknowledged] = asyncio.get_running_loop().create_future()
    monkeypatch.setattr(producer, "send", lambda *args, **kwargs: never)

    with pytest.raises(AppendOutcomeUnknown, match="in time"):
        await appender.append(TEAM, b"{}")
