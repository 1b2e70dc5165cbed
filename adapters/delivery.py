"""Was a record the broker did not acknowledge appended anyway? Certainly not, or perhaps.

librdkafka reports a record that timed out in its queue and one that timed out in flight (the
broker frozen, the request written to the socket) alike, as `_MSG_TIMED_OUT`, and the Python
client does not expose the record's persistence status. What tells them apart is whether the
client sent any produce request while the record waited: its statistics count the produce
requests sent to each broker. No request in the record's lifetime: it was never sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from confluent_kafka import KafkaError

# Statistics this often; a failed record is judged on the second report after its failure, so
# the verdict comes at most two intervals after librdkafka gave up.
STATS_INTERVAL_MS = 100
# Errors librdkafka raises before a record can be sent.
NEVER_SENT_CODES = frozenset(
    {
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._PURGE_QUEUE,
        KafkaError._QUEUE_FULL,
        KafkaError._INVALID_ARG,
    }
)

Counts = Mapping[str, int]
Verdict = Callable[[bool], None]  # called with True when the record was certainly not sent


def produce_requests(stats_json: str | bytes) -> dict[str, int]:
    """Produce requests sent so far, per broker, from one librdkafka statistics report."""
    brokers = orjson.loads(stats_json).get("brokers", {})
    return {name: int(broker.get("req", {}).get("Produce", 0)) for name, broker in brokers.items()}


def none_sent_between(before: Counts, after: Counts) -> bool:
    """True when no produce request went out between two reports.

    A broker that left the statistics in between might have had one: that counts as sent.
    """
    if any(name not in after for name in before):
        return False
    return all(count == before.get(name, 0) for name, count in after.items())


@dataclass
class _Pending:
    before: Counts
    judged_at: int  # the report generation whose arrival decides
    verdict: Verdict


class SendTracker:
    """Follows the client's produce requests and judges failed records when reports arrive.

    `on_stats` is librdkafka's stats callback; `judge` is called from the delivery callback.
    Both may run on more than one thread (the poller, and `flush` at close), hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counts = {}
        self._generation = 0
        self._pending: list[_Pending] = []

    def counts(self) -> Counts:
        """The latest report's counts, taken when a record is queued."""
        return self._counts

    def judge(self, error: KafkaError, before: Counts, verdict: Verdict) -> None:
        """Call `verdict` now for an error raised before sending, else after two more reports
        (the first may have been made before the failure)."""
        if error.code() in NEVER_SENT_CODES:
            verdict(True)
            return
        with self._lock:
            self._pending.append(_Pending(before, self._generation + 2, verdict))

    def on_stats(self, stats_json: str) -> None:
        counts = produce_requests(stats_json)
        with self._lock:
            self._counts = counts
            self._generation += 1
            due = [p for p in self._pending if p.judged_at <= self._generation]
            self._pending = [p for p in self._pending if p.judged_at > self._generation]
        for pending in due:
            pending.verdict(none_sent_between(pending.before, counts))
