"""The dispatcher's Kafka clients, on one thread of their own.

The consumer of tasks.due and the transactional producer of the outputs are
used only from this thread: polls (and the rebalance callbacks they run),
transactions and seeks never overlap, so a revoke can commit inside its
callback without racing a commit of the main loop. The event loop hands work
over with :meth:`KafkaSide.run`.

One transaction per commit: the released outputs (results, retry commands,
dead letters) and the offsets after them, with the consumer's group metadata,
so on Apache Kafka they become visible together or not at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams.config import Settings, consumer_config, producer_config
from streams.kafka.clients import consume_batch, report_lag, seek_to_committed
from streams.kafka.topics import DUE
from streams.kafka.transactions import FatalKafkaError, run_transaction
from streams.ports import OutRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
TXN_TIMEOUT_S = 30.0
LAG_EVERY_S = 1.0


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-dispatchers"


def transactional_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-dispatcher-{settings.slot}"


Rebalance = Callable[[Consumer, list[TopicPartition]], None]


class KafkaSide:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.due_topic = settings.topic(DUE)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-kafka")
        self.consumer = Consumer(consumer_config(settings, "dispatcher", group_id(settings)))
        self.producer = Producer(
            producer_config(
                settings,
                "dispatcher",
                **{"transactional.id": transactional_id(settings)},
            )
        )
        self._lag_checked = 0.0
        self.last_poll_monotonic = 0.0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- everything below runs on the Kafka thread ------------------------------

    def start(self, on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        # Fences a dead predecessor in this slot and ends its open transaction.
        self.producer.init_transactions(TXN_TIMEOUT_S)
        self.consumer.subscribe(
            [self.due_topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
        )

    def poll(self, max_messages: int, timeout_s: float) -> list[Message]:
        messages = consume_batch(self.consumer, max_messages, timeout_s)
        self.last_poll_monotonic = time.monotonic()
        for message in messages:
            error = message.error()
            if error is not None and error.fatal():
                raise FatalKafkaError.of(error, "consume")
        if self.last_poll_monotonic - self._lag_checked >= LAG_EVERY_S:
            self._lag_checked = self.last_poll_monotonic
            self._update_lag()
        return messages

    def commit(self, outputs: Iterable[OutRecord], offsets: dict[int, int]) -> None:
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

    def rewind(self) -> None:
        """Seek every assigned partition back to its committed offset."""
        assigned = self.consumer.assignment()
        if not assigned:
            return
        seek_to_committed(self.consumer, assigned, TXN_TIMEOUT_S)
        log.info("rewound %s to committed offsets", sorted(tp.partition for tp in assigned))

    def pause(self, paused: bool) -> None:
        assigned = self.consumer.assignment()
        if assigned:
            (self.consumer.pause if paused else self.consumer.resume)(assigned)

    def assigned_partitions(self) -> list[int]:
        return sorted(tp.partition for tp in self.consumer.assignment())

    def _update_lag(self) -> None:
        report_lag(self.consumer, group_id(self.settings), self.consumer.assignment())

    def close(self) -> None:
        """Leave the group (runs the revoke callback, which commits), then flush."""
        try:
            self.consumer.close()
        finally:
            self.producer.flush(TXN_TIMEOUT_S)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
