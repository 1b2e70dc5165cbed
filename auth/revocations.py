"""Revoked tokens: every service reads the revocations topic into memory and refuses the tokens
of a user signed before that user's not-before time, without a database call per request.

The admin service publishes a revocation when it disables an account, resets its password or
erases it (admin/audit.py). Each service reads the compacted topic from its beginning in a thread
of its own (no consumer group, nothing committed) and keeps reading, so a new revocation is
applied within about a second. A starting service waits (up to STARTUP_WAIT_SECONDS) until the
reader has caught up with what the topic held, so it serves knowing every revocation. If Kafka
cannot be read by then it serves anyway, logging an error, and applies the revocations once it
reads them: refusing every token instead would make a Kafka outage stop even the services that
need only the database (the queries service, team management), as they never did before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from auth.tokens import Identity, InvalidToken
from schemas.audit import Revocation
from schemas.clock import parse_millis

log = logging.getLogger(__name__)

#: How long a starting service waits to have read every revocation before it serves anyway.
STARTUP_WAIT_SECONDS = 10.0
POLL_SECONDS = 0.2
RETRY_SECONDS = 1.0
METADATA_TIMEOUT = 5.0


class TokenRevoked(InvalidToken):
    """The token was signed before its user's tokens were revoked."""


class Revocations:
    """User id -> not-before (epoch seconds), as read from the revocations topic so far."""

    def __init__(self) -> None:
        self._not_before: dict[str, float] = {}
        self._loaded = threading.Event()
        self._listeners: list[Callable[[str, float], None]] = []
        self._membership_listeners: list[Callable[[str, str], None]] = []

    def listen(self, listener: Callable[[str, float], None]) -> None:
        """Call `listener(user_id, not_before)` on each revocation applied from now on (in the
        feed's thread): what outlives a request, a live stream, is ended by it."""
        self._listeners.append(listener)

    def loaded(self) -> None:
        """The feed has read everything the topic held when it started."""
        self._loaded.set()

    def wait_loaded(self, timeout: float) -> bool:
        """Whether the feed caught up within `timeout` seconds."""
        return self._loaded.wait(timeout)

    def listen_memberships(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(team_id, user_id)` (in the feed's thread) when an operator removed a
        member: a service forgets the membership it cached instead of waiting for its expiry."""
        self._membership_listeners.append(listener)

    def membership_ended(self, team_id: str, user_id: str) -> None:
        for listener in self._membership_listeners:
            listener(team_id, user_id)

    def apply(self, user_id: str, not_before: float | None) -> None:
        """The latest revocation of `user_id` (None: a tombstone, no revocation)."""
        if not_before is None:
            self._not_before.pop(user_id, None)
            return
        self._not_before[user_id] = not_before
        for listener in self._listeners:
            listener(user_id, not_before)

    def check(self, identity: Identity) -> None:
        """TokenRevoked if `identity`'s token was signed before its user's not-before time."""
        not_before = self._not_before.get(identity.user_id)
        if not_before is not None and identity.issued_at < not_before:
            raise TokenRevoked("the token was revoked; sign in again")


def parse_revocation(key: bytes | None, value: bytes | None) -> tuple[str, float | None]:
    """(user id, not-before in epoch seconds, or None for a tombstone) of one record."""
    if value is None:
        if not key:
            raise ValueError("a tombstone without a key")
        return key.decode(), None
    revocation = msgspec.json.decode(value, type=Revocation)
    return revocation.user_id, parse_millis(revocation.not_before) / 1000


class RevocationFeed:
    """Reads the revocations topic into `revocations` in a thread until stopped."""

    def __init__(self, bootstrap: str, topic: str, revocations: Revocations) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._revocations = revocations
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(10.0)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"chorus-revocations-{uuid.uuid4()}",  # required, never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 100,
                "log.connection.close": False,
                "log_level": 0,  # a broker that is down is reported below, once a second
            }
        )
        try:
            pending = self._assign(consumer)
            if pending is not None:
                self._read(consumer, pending)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> dict[int, int] | None:
        """Assign every partition from its beginning; partition -> end offset to reach."""
        while not self._stopping.is_set():
            try:
                metadata = consumer.list_topics(self._topic, timeout=METADATA_TIMEOUT)
                described = metadata.topics[self._topic]
                if described.error is not None or not described.partitions:
                    raise KafkaException(described.error)
                pending = {}
                for partition in sorted(described.partitions):
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(self._topic, partition), timeout=METADATA_TIMEOUT
                    )
                    if high > low:
                        pending[partition] = high
            except KafkaException as exc:
                log.warning("revocations: cannot read %s yet: %s", self._topic, exc)
                self._stopping.wait(RETRY_SECONDS)
                continue
            consumer.assign(
                [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in described.partitions]
            )
            return pending
        return None

    def _read(self, consumer: Consumer, pending: dict[int, int]) -> None:
        if not pending:
            self._revocations.loaded()
        while not self._stopping.is_set():
            message = consumer.poll(POLL_SECONDS)
            if message is None:
                continue
            partition = message.partition() or 0
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    self._reached(pending, partition)
                else:
                    log.warning("revocations: %s", error)
                continue
            self._apply(message)
            if (message.offset() or 0) + 1 >= pending.get(partition, 0):
                self._reached(pending, partition)

    def _reached(self, pending: dict[int, int], partition: int) -> None:
        if pending.pop(partition, None) is not None and not pending:
            self._revocations.loaded()

    def _apply(self, message: Message) -> None:
        try:
            value = message.value()
            if value is not None:
                revocation = msgspec.json.decode(value, type=Revocation)
                if revocation.team_id is not None:
                    self._revocations.membership_ended(revocation.team_id, revocation.user_id)
                    return
            user_id, not_before = parse_revocation(message.key(), value)
        except (ValueError, msgspec.ValidationError) as exc:
            log.warning(
                "revocations: skipped a malformed record (offset %s): %s", message.offset(), exc
            )
            return
        self._revocations.apply(user_id, not_before)


@asynccontextmanager
async def revocation_feed(
    bootstrap: str | None, topic: str, revocations: Revocations
) -> AsyncIterator[None]:
    """Keep `revocations` current while the block runs (nothing to do without Kafka: a service
    run in-process by a unit test). Waits up to STARTUP_WAIT_SECONDS for the topic to be read."""
    if bootstrap is None:
        yield
        return
    feed = RevocationFeed(bootstrap, topic, revocations)
    feed.start()
    try:
        if not await asyncio.to_thread(revocations.wait_loaded, STARTUP_WAIT_SECONDS):
            log.error(
                "revocations: %s not read within %s s; serving without them until it is",
                topic,
                STARTUP_WAIT_SECONDS,
            )
        yield
    finally:
        await asyncio.to_thread(feed.stop)
