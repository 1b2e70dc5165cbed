"""Telling a record that was never sent from one that may be in the log, by librdkafka's stats."""

from __future__ import annotations

import orjson
from confluent_kafka import KafkaError

from adapters.delivery import SendTracker, none_sent_between, produce_requests


def _stats(**produce: int) -> str:
    brokers = {name: {"state": "UP", "req": {"Produce": count}} for name, count in produce.items()}
    return orjson.dumps({"brokers": brokers}).decode()


def test_produce_requests_are_counted_per_broker() -> None:
    assert produce_requests(_stats(a=3, b=0)) == {"a": 3, "b": 0}
    assert produce_requests(orjson.dumps({"brokers": {"a": {}}})) == {"a": 0}


def test_no_request_in_between_means_never_sent() -> None:
    assert none_sent_between({"a": 2}, {"a": 2})
    assert none_sent_between({}, {"bootstrap": 0})  # no report yet when the record was queued
    assert not none_sent_between({"a": 2}, {"a": 3})
    assert not none_sent_between({}, {"a": 1})
    assert not none_sent_between({"a": 2}, {"b": 2})  # a broker left: it may have had one


def test_a_failure_is_judged_on_the_second_report_after_it() -> None:
    tracker = SendTracker()
    tracker.on_stats(_stats(a=5))
    verdicts: list[bool] = []
    tracker.judge(KafkaError(KafkaError._MSG_TIMED_OUT), tracker.counts(), verdicts.append)

    tracker.on_stats(_stats(a=5))
    assert verdicts == []  # this report may have been made before the failure
    tracker.on_stats(_stats(a=5))
    assert verdicts == [True]


def test_a_request_sent_in_the_records_lifetime_makes_it_unknown() -> None:
    tracker = SendTracker()
    tracker.on_stats(_stats(a=5))
    before = tracker.counts()
    tracker.on_stats(_stats(a=6))
    verdicts: list[bool] = []
    tracker.judge(KafkaError(KafkaError._MSG_TIMED_OUT), before, verdicts.append)
    tracker.on_stats(_stats(a=6))
    tracker.on_stats(_stats(a=6))
    assert verdicts == [False]


def test_an_error_raised_before_sending_is_judged_at_once() -> None:
    tracker = SendTracker()
    verdicts: list[bool] = []
    tracker.judge(KafkaError(KafkaError._UNKNOWN_PARTITION), {}, verdicts.append)
    assert verdicts == [True]
