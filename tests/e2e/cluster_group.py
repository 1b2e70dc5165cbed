"""The workers' consumer group as the cluster test watches it: who is in it and what they own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

from tests.e2e.cluster_load import DEADLINE


def group_seen(bootstrap: str, group: str, seen: Callable[[list[Any]], bool], what: str) -> float:
    """Describe the group until `seen(its members)` holds; returns when it first did
    (monotonic). AssertionError naming `what` after DEADLINE."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            described = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except Exception:  # the coordinator may be moving to another broker
            time.sleep(0.2)
            continue
        if seen(described.members):
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"group {group}: not {what} within {DEADLINE:.0f} s")


def wait_for_group(bootstrap: str, group: str, topic: str, partitions: int, members: int) -> float:
    """Wait until the workers' group has `members` members that share all `partitions` of
    `topic`; returns when that was first seen (monotonic)."""

    def sharing(found: list[Any]) -> bool:
        owned = [
            {tp.partition for tp in member.assignment.topic_partitions if tp.topic == topic}
            for member in found
        ]
        everything = set().union(*owned) if owned else set()
        return len(owned) == members and all(owned) and everything == set(range(partitions))

    return group_seen(bootstrap, group, sharing, f"{members} members sharing {topic}")


def member_of(bootstrap: str, group: str, instance: str) -> str:
    """The member id the group coordinator has for a static member (its instance id)."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    (member,) = [m for m in described.members if m.group_instance_id == instance]
    return str(member.member_id)


def rejoined(bootstrap: str, group: str, instance: str, before: str) -> float:
    """Wait until static member `instance` (a killed worker) is in the group under a member id
    other than `before`, with partitions; returns when that was first seen (monotonic)."""

    def back(found: list[Any]) -> bool:
        return any(
            member.group_instance_id == instance
            and member.member_id != before
            and member.assignment.topic_partitions
            for member in found
        )

    return group_seen(bootstrap, group, back, f"{instance} back")
