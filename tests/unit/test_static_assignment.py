"""Static partition assignment (streams.kafka.assignment): one owner per partition,
one transactional id per owner, and the group's callbacks delivered as a group would."""

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from streams.config import InvalidSetting, Settings, group_membership
from streams.dispatching.kafka_side import transactional_id as dispatcher_txn_id
from streams.kafka.assignment import (
    Membership,
    PartitionsCallback,
    owned_partitions,
    static_member,
)
from streams.wheel.kafka_side import transactional_id as processor_txn_id

STATIC = Settings(assignment="static", member_index=1, member_count=3, slot="dev-dispatcher-2")


def test_every_partition_has_exactly_one_owner_for_every_count() -> None:
    for partitions in range(1, 25):
        for count in range(1, 9):
            owners: dict[int, list[int]] = {}
            for index in range(count):
                for p in owned_partitions(index, count, partitions):
                    owners.setdefault(p, []).append(index)
            assert owners == {p: [p % count] for p in range(partitions)}


def test_processes_that_can_own_a_partition_share_one_transactional_id() -> None:
    # The safety argument: in static mode the id follows the index, not the
    # process's slot, so a restart in the slot (or any process given the same
    # index) fences every earlier owner of the same partitions.
    other_slot = replace(STATIC, slot="somewhere-else")
    assert processor_txn_id(STATIC) == processor_txn_id(other_slot)
    assert dispatcher_txn_id(STATIC) == dispatcher_txn_id(other_slot)
    others = {dispatcher_txn_id(replace(STATIC, member_index=i)) for i in range(3)}
    assert len(others) == 3
    # Group mode keeps the slot's id.
    assert dispatcher_txn_id(Settings(slot="a")) != dispatcher_txn_id(Settings(slot="b"))


@pytest.mark.parametrize(("index", "count"), [(None, 2), (0, None), (None, None), (2, 2), (5, 1)])
def test_static_mode_refuses_a_missing_or_impossible_member(
    index: int | None, count: int | None
) -> None:
    settings = replace(STATIC, member_index=index, member_count=count)
    with pytest.raises(InvalidSetting):
        static_member(settings)
    with pytest.raises(InvalidSetting):
        Membership(FakeConsumer(4), "t", settings)
    with pytest.raises(InvalidSetting):
        processor_txn_id(settings)


def test_the_settings_come_from_the_environment() -> None:
    env = {
        "KRONWHEEL_ASSIGNMENT": "Static",
        "KRONWHEEL_MEMBER_INDEX": "0",
        "KRONWHEEL_MEMBER_COUNT": "2",
    }
    settings = Settings.from_env(env)
    assert static_member(settings) == (0, 2)
    with pytest.raises(InvalidSetting):
        Settings.from_env({"KRONWHEEL_ASSIGNMENT": "sticky"})
    with pytest.raises(InvalidSetting):
        Settings.from_env({"KRONWHEEL_MEMBER_COUNT": "0"})
    # No group.instance.id for a consumer that never joins.
    assert group_membership(replace(settings, static_membership="on"), "g") == {}


class FakeConsumer:
    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.assigned: list[TopicPartition] | None = None
        self.subscribed: dict[str, Any] | None = None

    def subscribe(
        self,
        topics: list[str],
        on_assign: PartitionsCallback | None = None,
        on_revoke: PartitionsCallback | None = None,
        on_lost: PartitionsCallback | None = None,
    ) -> None:
        self.subscribed = {"topics": topics, "on_lost": on_lost}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        meta = SimpleNamespace(partitions={p: None for p in range(self.partitions)})
        return SimpleNamespace(topics={topic: meta})


def assigned(consumer: FakeConsumer) -> list[TopicPartition]:
    return consumer.assigned or []


def test_static_member_takes_its_partitions_inside_the_first_poll_and_gives_them_up_on_close() -> (
    None
):
    consumer = FakeConsumer(8)
    events: list[tuple[str, list[int]]] = []
    membership = Membership(consumer, "t", STATIC)
    membership.join(
        lambda ps: events.append(("assign", ps)),
        lambda ps: events.append(("revoke", ps)),
        lambda ps: events.append(("lost", ps)),
    )
    assert events == []
    assert consumer.assigned is None
    assert consumer.subscribed is None
    membership.before_poll()
    assert events == [("assign", [1, 4, 7])]
    taken = assigned(consumer)
    assert [(tp.topic, tp.partition) for tp in taken] == [
        ("t", 1),
        ("t", 4),
        ("t", 7),
    ]
    # The assignment carries no offsets: the client starts from the group's committed ones.
    assert all(tp.offset < 0 for tp in taken)
    membership.before_poll()  # once only
    membership.before_close()
    membership.before_close()
    assert events == [("assign", [1, 4, 7]), ("revoke", [1, 4, 7])]


def test_group_mode_subscribes_and_leaves_delivery_to_the_client() -> None:
    consumer = FakeConsumer(8)
    events: list[tuple[str, list[int]]] = []
    membership = Membership(consumer, "t", Settings())
    membership.join(
        lambda ps: events.append(("assign", ps)),
        lambda ps: events.append(("revoke", ps)),
        lambda ps: events.append(("lost", ps)),
    )
    assert consumer.subscribed is not None
    assert consumer.subscribed["topics"] == ["t"]
    membership.before_poll()
    membership.before_close()
    assert events == []
    assert consumer.assigned is None
    consumer.subscribed["on_lost"](consumer, [TopicPartition("t", 2)])
    assert events == [("lost", [2])]


def test_static_mode_refuses_a_topic_without_partitions() -> None:
    membership = Membership(FakeConsumer(0), "t", STATIC)
    with pytest.raises(RuntimeError):
        membership.join(print, print, print)
