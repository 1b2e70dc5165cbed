"""Topic creation sends again what failed on the client's own connection, and nothing else."""

from __future__ import annotations

import time
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.cimpl import NewTopic

from adapters.errors import InfraError
from adapters.kafka import _create


def outcome(code: int | None) -> Future[None]:
    future: Future[None] = Future()
    if code is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(KafkaError(code)))
    return future


class Admin:
    """Answers each create_topics call with the next round of error codes by topic name."""

    def __init__(self, rounds: list[dict[str, int | None]]) -> None:
        self.rounds = rounds
        self.asked: list[list[str]] = []

    def create_topics(self, wanted: list[NewTopic], **_: Any) -> dict[str, Future[None]]:
        self.asked.append([topic.topic for topic in wanted])
        answers = self.rounds.pop(0)
        return {topic.topic: outcome(answers[topic.topic]) for topic in wanted}


def topics(*names: str) -> list[NewTopic]:
    return [NewTopic(name, 1, 1) for name in names]


def test_a_topic_whose_broker_handle_was_destroyed_is_asked_for_again() -> None:
    admin = Admin(
        [
            {"a": None, "b": KafkaError._DESTROY_BROKER, "c": KafkaError.TOPIC_ALREADY_EXISTS},
            {"b": KafkaError._TRANSPORT},
            {"b": None},
        ]
    )
    _create(admin, topics("a", "b", "c"), time.monotonic() + 30, "k:9092")  # type: ignore[arg-type]
    assert admin.asked == [["a", "b", "c"], ["b"], ["b"]]


def test_a_refusal_is_not_asked_again() -> None:
    admin = Admin([{"a": KafkaError.INVALID_REPLICATION_FACTOR}])
    with pytest.raises(InfraError, match="could not create Kafka topic a on k:9092"):
        _create(admin, topics("a"), time.monotonic() + 30, "k:9092")  # type: ignore[arg-type]
    assert admin.asked == [["a"]]


def test_transient_failures_past_the_deadline_are_an_error() -> None:
    admin = Admin([{"a": KafkaError._DESTROY_BROKER}])
    with pytest.raises(InfraError, match="could not create Kafka topics a on k:9092 in time"):
        _create(admin, topics("a"), time.monotonic() - 1, "k:9092")  # type: ignore[arg-type]
    assert admin.asked == [["a"]]
