"""The dispatcher's Kafka side on confluent-kafka (the :class:`streams.ports.DispatcherKafka`
the loop uses unless a test passes another).

The consumer of tasks.due and the transactional producer of the outputs are
used only from the dispatcher's Kafka thread: polls (and the rebalance
callbacks they run), transactions and seeks never overlap, so a revoke can
commit inside its callback without racing a commit of the main loop.

One transaction per commit: the released outputs (results, retry commands,
dead letters) and the offsets after them, with the consumer's group metadata,
so on Apache Kafka they become visible together or not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams.config import Settings, consumer_config, group_membership, producer_config
from streams.kafka.assignment import Membership, transactional_suffix
from streams.kafka.brokerwatch import BrokerWatch
from streams.kafka.clients import consume_batch, report_lag, seek_to_committed
from streams.kafka.topics import DUE
from streams.kafka.transactions import FatalKafkaError, flush_quietly, run_transaction
from streams.ports import OutRecord, Rebalance

log = logging.getLogger(__name__)

TXN_TIMEOUT_S = 30.0
LAG_EVERY_S = 1.0


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-dispatchers"


def transactional_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-dispatcher-{transactional_suffix(settings)}"


class ConfluentDispatcherKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.due_topic = settings.topic(DUE)
        self.broker = BrokerWatch()
        self.consumer = Consumer(
            consumer_config(
                settings,
                "dispatcher",
                group_id(settings),
                **group_membership(settings, group_id(settings)),
                **self.broker.config(),
            )
        )
        self.producer = Producer(
            producer_config(
                settings,
                "dispatcher",
                **{"transactional.id": transactional_id(settings)},
            )
        )
        # Group or static assignment (KRONWHEEL_ASSIGNMENT; streams.kafka.assignment).
        self._membership = Membership(self.consumer, self.due_topic, settings)
        self._lag_checked = 0.0
        self._paused: set[int] = set()  # partitions this side paused (pause())
        self._last_poll = 0.0

    def subscribe(self, on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        # Fences a dead predecessor in this slot and ends its open transaction.
        self.producer.init_transactions(TXN_TIMEOUT_S)
        self._membership.join(on_assign, on_revoke, on_lost)

    def last_poll_monotonic(self) -> float:
        return self._last_poll

    def broker_connected(self) -> bool:
        return self.broker.connected()

    def poll(self, max_messages: int, timeout_s: float) -> list[Message]:
        self._membership.before_poll()  # static mode: the assignment, in the first poll
        messages = consume_batch(self.consumer, max_messages, timeout_s)
        self._last_poll = time.monotonic()
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                raise FatalKafkaError.of(error, "consume")
        if self._last_poll - self._lag_checked >= LAG_EVERY_S:
            self._lag_checked = self._last_poll
            self._update_lag()
        return messages

    def transact(self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]) -> None:
        """Produce the outputs and commit the offsets in one transaction.

        Raises TransactionAborted after aborting (rewind and redo), FatalKafkaError
        when this process must not write again (the supervisor restarts it):
        streams.kafka.transactions has the taxonomy.
        """
        run_transaction(
            self.producer,
            outputs,
            [TopicPartition(self.due_topic, p, o) for p, o in sorted(offsets.items())],
            self.consumer.consumer_group_metadata(),
            TXN_TIMEOUT_S,
        )

    def rewind(self, partitions: Sequence[int]) -> None:
        """Seek these partitions back to their committed offsets."""
        if not partitions:
            return
        tps = [TopicPartition(self.due_topic, p) for p in partitions]
        seek_to_committed(self.consumer, tps, TXN_TIMEOUT_S)
        log.info("rewound %s to committed offsets", sorted(partitions))

    def pause(self, partitions: Sequence[int]) -> None:
        assigned = {tp.partition for tp in self.consumer.assignment()}
        wanted = set(partitions) & assigned
        resume = (self._paused - wanted) & assigned
        if wanted:  # again each time: a partition assigned meanwhile starts unpaused
            self.consumer.pause([TopicPartition(self.due_topic, p) for p in sorted(wanted)])
        if resume:
            self.consumer.resume([TopicPartition(self.due_topic, p) for p in sorted(resume)])
        self._paused = wanted

    def _update_lag(self) -> None:
        report_lag(self.consumer, group_id(self.settings), self.consumer.assignment())

    def close(self) -> None:
        """Leave the group (runs the revoke callback, which commits), then flush."""
        try:
            try:
                self._membership.before_close()  # static mode: the revoke callback
            finally:
                self.consumer.close()  # group mode: runs the revoke callback
        finally:
            flush_quietly(self.producer, TXN_TIMEOUT_S)
