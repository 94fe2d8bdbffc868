"""How a role's consumer gets its partitions: from the group, or statically.

``group`` (the default): ``subscribe()``; the broker's group coordinator hands
out partitions and moves them when a member comes or goes.

``static`` (``KRONWHEEL_ASSIGNMENT=static``, what ``kronwheel dev`` uses on its
embedded broker): member ``index`` of ``count`` takes the partitions
``p % count == index`` with ``assign()``, at once, with no coordinator. The dev
broker holds a group join for seconds after a member dies; a role restarted in
its slot here owns its partitions in its first poll.

Why static is safe, and only where it is used
---------------------------------------------
Exactly-once rests on one thing: a partition's offsets and outputs are only
ever committed by one transactional producer at a time. With a group, the
coordinator decides the owner and a transactional id per slot fences a dead
owner's restart. Here nothing decides at run time, so the argument is:

1. The owner of partition ``p`` is the member with index ``p % count``: a
   function of (p, count), so for one count every partition has exactly one
   owning index (:func:`owned_partitions`, tested over all small counts).
2. A static member's transactional id is a function of its role and index
   only (:func:`transactional_suffix`), not of the process. Two processes that
   own ``p`` with one count have one index, so one transactional id, and the
   later one's ``init_transactions`` fences the earlier: the earlier one's next
   commit fails (checked on the dev broker and on Apache Kafka 3.7), and its
   open transaction is aborted. It cannot commit offsets or outputs of ``p``
   again. So a zombie in the same slot is harmless, as in group mode.
3. The count is the same for every member that can reach the broker: only
   ``kronwheel dev`` starts static members, with one count per role for its
   whole run, and the embedded broker lives (in memory) exactly as long as that
   dev process (which holds a lock on its data dir). Members of a previous dev
   run cannot reach this broker's topics.

What would break it, and so is refused or not done: a member without an index
or a count, or with ``index >= count`` (:func:`static_member` refuses to
start); static members on an external broker (dev keeps group mode there; two
deployments with different counts would own a partition under two
transactional ids); and a group-mode member of the same role and prefix on
the same broker at the same time (do not mix the modes on one broker).

Committed offsets still live in the role's group (``group.id`` is set; an
assigned partition starts at the group's committed offset, and
``send_offsets_to_transaction`` takes the consumer's group metadata with no
generation, which the dev broker and Apache Kafka accept for a group without
members).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import TopicPartition

from streams.config import InvalidSetting, Settings
from streams.ports import Rebalance

LIST_TOPICS_TIMEOUT_S = 30.0
# A client rebalance callback: (consumer, partitions).
PartitionsCallback = Callable[[Any, list[TopicPartition]], None]


class AssignableConsumer(Protocol):
    """What a membership needs of confluent_kafka.Consumer (a fake in unit tests)."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: PartitionsCallback | None = ...,
        on_revoke: PartitionsCallback | None = ...,
        on_lost: PartitionsCallback | None = ...,
    ) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...


def static_member(settings: Settings) -> tuple[int, int]:
    """(index, count) of a static member; refuses a missing or impossible pair."""
    index, count = settings.member_index, settings.member_count
    if index is None or count is None:
        raise InvalidSetting(
            "KRONWHEEL_ASSIGNMENT=static needs KRONWHEEL_MEMBER_INDEX and KRONWHEEL_MEMBER_COUNT"
        )
    if index >= count:
        raise InvalidSetting(
            f"KRONWHEEL_MEMBER_INDEX={index} is not below KRONWHEEL_MEMBER_COUNT={count}"
        )
    return index, count


def owned_partitions(index: int, count: int, partitions: int) -> list[int]:
    """The partitions member ``index`` of ``count`` owns: one owner for each."""
    return [p for p in range(partitions) if p % count == index]


def transactional_suffix(settings: Settings) -> str:
    """What names this member's transactional id: its slot in group mode; its
    index in static mode, so that every process that can own a partition there
    shares the id and fences the one before (point 2 above)."""
    if settings.assignment == "static":
        index, _count = static_member(settings)
        return f"static-{index}"
    return settings.slot


class Membership:
    """A consumer's partitions, delivered through the role's rebalance callbacks.

    Group mode subscribes and the client runs the callbacks inside poll. Static
    mode assigns in the first :meth:`before_poll` and runs ``on_assign`` there
    (inside the poll, as a group would), and runs ``on_revoke`` in
    :meth:`before_close` (as closing a group member does); never ``on_lost``.
    """

    def __init__(self, consumer: AssignableConsumer, topic: str, settings: Settings) -> None:
        self._consumer = consumer
        self._topic = topic
        self._static = static_member(settings) if settings.assignment == "static" else None
        self._pending: list[int] | None = None
        self._owned: list[int] = []
        self._on_assign: Rebalance = _ignore
        self._on_revoke: Rebalance = _ignore

    @property
    def static(self) -> bool:
        return self._static is not None

    def join(
        self,
        on_assign: Rebalance,
        on_revoke: Rebalance,
        on_lost: Rebalance,
        assign_in_callback: bool = False,
    ) -> None:
        """Subscribe (group) or work out this member's partitions (static).

        ``assign_in_callback``: in group mode, assign inside the callback, before
        ``on_assign`` runs (so it can pause what it is not ready to read)."""
        if self._static is None:
            self._consumer.subscribe(
                [self._topic],
                on_assign=_group_assign(on_assign, assign_in_callback),
                on_revoke=lambda _c, tps: on_revoke([tp.partition for tp in tps]),
                on_lost=lambda _c, tps: on_lost([tp.partition for tp in tps]),
            )
            return
        index, count = self._static
        partitions = len(
            self._consumer.list_topics(self._topic, LIST_TOPICS_TIMEOUT_S)
            .topics[self._topic]
            .partitions
        )
        if partitions == 0:
            raise RuntimeError(f"topic {self._topic} has no partitions (does it exist?)")
        self._on_assign, self._on_revoke = on_assign, on_revoke
        self._pending = owned_partitions(index, count, partitions)

    def before_poll(self) -> None:
        """Static mode, first poll: take the partitions and tell the role."""
        if self._pending is None:
            return
        partitions, self._pending = self._pending, None
        self._consumer.assign([TopicPartition(self._topic, p) for p in partitions])
        self._owned = partitions
        self._on_assign(list(partitions))

    def before_close(self) -> None:
        """Static mode: give the partitions up as closing a group member would."""
        owned, self._owned = self._owned, []
        if owned:
            self._on_revoke(owned)


def _ignore(_partitions: list[int]) -> None:
    return None


def _group_assign(on_assign: Rebalance, assign_in_callback: bool) -> PartitionsCallback:
    def assigned(consumer: Any, tps: list[TopicPartition]) -> None:
        if assign_in_callback:
            consumer.incremental_assign(tps)
        on_assign([tp.partition for tp in tps])

    return assigned
