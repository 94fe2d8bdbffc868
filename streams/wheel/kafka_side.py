"""The processor's Kafka side on confluent-kafka (the :class:`streams.ports.ProcessorKafka`
the loop uses unless a test passes another).

One consumer in the processors' group over tasks.commands, one transactional
producer whose id is fixed per slot, and the changelog reader for restores.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams.config import Settings, consumer_config, group_membership, producer_config
from streams.kafka.assignment import Membership, transactional_suffix
from streams.kafka.brokerwatch import BrokerWatch
from streams.kafka.clients import consume_batch, report_lag, seek_to_committed
from streams.kafka.topics import COMMANDS, STATE
from streams.kafka.transactions import FatalKafkaError, flush_quietly, run_transaction
from streams.ports import OutRecord, Rebalance
from streams.wheel.changelog import changelog_reaches, read_partition

TRANSACTION_TIMEOUT_MS = 10_000
# Each transaction call (send offsets, commit, abort) waits at most this long.
CALL_TIMEOUT_S = 10.0
INIT_TIMEOUT_S = 30.0
LAG_EVERY_S = 5.0


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-processors"


def transactional_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-processor-{transactional_suffix(settings)}"


class ConfluentProcessorKafka:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.commands_topic = settings.topic(COMMANDS)
        self.state_topic = settings.topic(STATE)
        self.broker = BrokerWatch()
        self._consumer = Consumer(
            consumer_config(
                settings,
                "processor",
                group_id(settings),
                **{"enable.partition.eof": False},
                **group_membership(settings, group_id(settings)),
                **self.broker.config(),
            )
        )
        self._producer = Producer(
            producer_config(
                settings,
                "processor",
                **{
                    "transactional.id": transactional_id(settings),
                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                },
            )
        )
        # Group or static assignment (KRONWHEEL_ASSIGNMENT; streams.kafka.assignment).
        self._membership = Membership(self._consumer, self.commands_topic, settings)
        self._lag_at = 0.0

    def broker_connected(self) -> bool:
        return self.broker.connected()

    def subscribe(self, on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        self._producer.init_transactions(INIT_TIMEOUT_S)  # fences a dead predecessor
        # Assign inside the callback rather than after it returns (the client's
        # default), so that the callback can pause what it is not ready to read.
        self._membership.join(on_assign, on_revoke, on_lost, assign_in_callback=True)

    def poll(self, max_messages: int, timeout_s: float) -> list[Message]:
        self._membership.before_poll()  # static mode: the assignment, in the first poll
        messages = consume_batch(self._consumer, max_messages, timeout_s)
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                raise FatalKafkaError.of(error, "consume")
        if time.monotonic() - self._lag_at > LAG_EVERY_S:
            self._lag_at = time.monotonic()
            owned = self._consumer.assignment()
            report_lag(self._consumer, group_id(self.settings), owned)
        return messages

    def positions(self, partitions: Sequence[int]) -> dict[int, int]:
        if not partitions:
            return {}
        tps = [TopicPartition(self.commands_topic, p) for p in partitions]
        return {tp.partition: tp.offset for tp in self._consumer.position(tps) if tp.offset >= 0}

    def transact(self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]) -> None:
        run_transaction(
            self._producer,
            outputs,
            [TopicPartition(self.commands_topic, p, o) for p, o in sorted(offsets.items())],
            self._consumer.consumer_group_metadata(),
            CALL_TIMEOUT_S,
        )

    def rewind(self, partitions: Sequence[int]) -> None:
        tps = [TopicPartition(self.commands_topic, p) for p in partitions]
        seek_to_committed(self._consumer, tps, INIT_TIMEOUT_S)

    def pause_partitions(self, partitions: Sequence[int]) -> None:
        if partitions:
            self._consumer.pause([TopicPartition(self.commands_topic, p) for p in partitions])

    def resume_partitions(self, partitions: Sequence[int]) -> None:
        if partitions:
            self._consumer.resume([TopicPartition(self.commands_topic, p) for p in partitions])

    def read_changelog(self, partition: int, start: int | None = None) -> Iterator[Message]:
        return read_partition(self.settings, self.state_topic, partition, start=start)

    def changelog_watermarks(self, partition: int) -> tuple[int, int]:
        tp = TopicPartition(self.state_topic, partition)
        low, high = self._consumer.get_watermark_offsets(tp, timeout=CALL_TIMEOUT_S, cached=False)
        return int(low), int(high)

    def changelog_reaches(self, partition: int, offset: int) -> bool:
        return changelog_reaches(self.settings, self.state_topic, partition, offset)

    def close(self) -> None:
        try:
            try:
                self._membership.before_close()  # static mode: the revoke callback
            finally:
                self._consumer.close()  # group mode: runs the revoke callback
        finally:
            flush_quietly(self._producer, CALL_TIMEOUT_S)
