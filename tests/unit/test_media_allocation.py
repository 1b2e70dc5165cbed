"""Allocation: one owner per partition, placement on live nodes, deterministic command ids."""

from __future__ import annotations

import random

from media.allocation import Allocate, Allocator, Release, allocate_id, leave_id, release_id
from media.call_view import CallInfo, CallView
from media.directory import Directory, NodeStatus, partition_owner

NOW = 1_800_000_000.0


def status(
    node: str,
    *,
    age: float = 0.0,
    draining: bool = False,
    full: bool = False,
    region: str = "local",
) -> bytes:
    return NodeStatus(
        node_id=node,
        region=region,
        base_url=f"http://{node}",
        rooms=0,
        participants=10 if full else 0,
        capacity=10,
        draining=draining,
        at_ms=int((NOW - age) * 1000),
    ).to_bytes()


def directory(**nodes: bytes) -> Directory:
    found = Directory()
    for node, value in nodes.items():
        found.apply(node.encode(), value)
    return found


def view_with(*calls: CallInfo) -> CallView:
    view = CallView()
    view.calls = {call.call_id: call for call in calls}
    return view


def clock() -> float:
    return 0.0


def test_every_node_computes_the_same_owner_and_few_partitions_move() -> None:
    nodes = ["a", "b", "c"]
    owners = [partition_owner(p, nodes) for p in range(60)]
    assert owners == [partition_owner(p, reversed(nodes)) for p in range(60)]
    assert set(owners) == set(nodes)
    without_c = [partition_owner(p, ["a", "b"]) for p in range(60)]
    # Only the partitions c owned change hands.
    assert all(o == w for o, w in zip(owners, without_c, strict=True) if o != "c")
    assert partition_owner(0, []) is None


def test_silent_draining_and_tombstoned_nodes_do_not_allocate() -> None:
    found = directory(a=status("a"), b=status("b", age=3.5), c=status("c", draining=True))
    assert found.allocators(NOW) == ["a"]
    found.apply(b"a", None)
    assert found.allocators(NOW) == []


def test_the_owner_allocates_a_new_call_once_on_a_live_node_with_room() -> None:
    found = directory(a=status("a"), b=status("b", full=True), c=status("c", age=10))
    call = CallInfo("call-1", "team-1", partition=0, started_by="ann")
    owner = partition_owner(0, found.allocators(NOW))
    other = "b" if owner == "a" else "a"
    assert Allocator(str(other)).plan(view_with(call), found, NOW, clock) == []
    allocator = Allocator(str(owner), random.Random(1))
    (step,) = allocator.plan(view_with(call), found, NOW, clock)
    assert step == Allocate(allocate_id("call-1", 0), call, "a", "http://a")
    assert allocator.plan(view_with(call), found, NOW, clock) == []  # sent already
    assert allocator.plan(view_with(call), found, NOW, lambda: 6.0) == [step]  # sent again


def test_a_room_on_a_silent_node_moves_with_the_next_allocation_id() -> None:
    found = directory(a=status("a"), b=status("b", age=3.5))
    call = CallInfo("call-1", "team-1", partition=0, started_by="ann", node="b", allocations=1)
    (step,) = Allocator("a").plan(view_with(call), found, NOW, clock)
    assert step == Allocate(allocate_id("call-1", 1), call, "a", "http://a")
    assert allocate_id("call-1", 1) != allocate_id("call-1", 0)


def test_a_room_on_a_live_node_stays_and_an_ended_call_is_released() -> None:
    found = directory(a=status("a"))
    live = CallInfo("call-1", "team-1", partition=0, started_by="ann", node="a", allocations=1)
    ended = CallInfo(
        "call-2", "team-1", partition=0, started_by="ann", active=False, node="a", allocations=1
    )
    steps = Allocator("a").plan(view_with(live, ended), found, NOW, clock)
    assert steps == [Release(release_id("call-2", 1), ended)]


def test_no_node_with_room_means_no_allocation_yet() -> None:
    found = directory(a=status("a", full=True))
    call = CallInfo("call-1", "team-1", partition=0, started_by="ann")
    assert Allocator("a").plan(view_with(call), found, NOW, clock) == []


def test_leave_ids_differ_by_join() -> None:
    assert leave_id("c", "u", 1) == leave_id("c", "u", 1)
    assert leave_id("c", "u", 1) != leave_id("c", "u", 2)


def test_a_call_is_placed_in_its_starters_region_else_in_any_region_with_room() -> None:
    nodes = {
        "eu-1": status("eu-1", region="eu-west"),
        "eu-2": status("eu-2", region="eu-west"),
        "us-1": status("us-1", region="us-east"),
        "us-2": status("us-2", region="us-east"),
    }
    view = view_with(*(CallInfo(f"c{k}", "t", partition=0, started_by="ann") for k in range(20)))
    owner = str(partition_owner(0, sorted(nodes)))

    def placed(found: Directory) -> set[str]:
        steps = Allocator(owner, random.Random(7)).plan(view, found, NOW, clock)
        assert len(steps) == 20
        return {step.node for step in steps if isinstance(step, Allocate)}

    view.regions["ann"] = "us-east"
    assert placed(directory(**nodes)) <= {"us-1", "us-2"}
    view.regions["ann"] = "eu-west"
    assert placed(directory(**nodes)) <= {"eu-1", "eu-2"}
    full_eu = {**nodes, "eu-1": status("eu-1", region="eu-west", full=True)}
    assert placed(directory(**full_eu)) == {"eu-2"}
    gone_eu = {
        **nodes,
        "eu-1": status("eu-1", region="eu-west", age=10),
        "eu-2": status("eu-2", region="eu-west", draining=True),
    }
    assert placed(directory(**gone_eu)) <= {"us-1", "us-2"}  # no room in eu-west: any region
    view.regions["ann"] = "ap-south"  # no node there at all: any of the four
    assert len(placed(directory(**nodes)) - {"us-1", "us-2"}) >= 1
