"""Small pieces over confluent-kafka that every role shares.

* :class:`AsyncProducer`: a producer whose sends can be awaited. librdkafka
  runs its own threads; a small poll thread serves delivery reports and hands
  each result to the event loop, so a coroutine can ``await`` that its record
  is on the broker (acks=all) before it answers a client or commits.
* :func:`consume_batch`, :func:`seek_to_committed`, :func:`report_lag`: the
  loops the processor, the dispatcher and the test harness would otherwise
  each write again. (Producing and the transaction step are in
  :mod:`streams.kafka.transactions`.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streams.kafka.transactions import produce_retrying
from streams.metrics import CONSUMER_LAG
from streams.ports import ConsumedMessage

log = logging.getLogger(__name__)


class AsyncProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._stopping = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_loop, name="kafka-producer-poll", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Message]:
        """Queue one record; the returned future resolves when the broker has it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def delivered(error: Any, message: Message) -> None:
            # Runs on the poll thread: hand over to the loop's thread.
            loop.call_soon_threadsafe(_settle, future, error, message)

        produce_retrying(
            self._producer,
            topic,
            key,
            value,
            headers=headers,
            partition=partition,
            on_delivery=delivered,
        )
        return future

    def flush(self, timeout_s: float = 10.0) -> int:
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._stopping.set()
        self._poller.join(timeout=2.0)


def _settle(future: asyncio.Future[Message], error: Any, message: Message) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(KafkaException(error))
    else:
        future.set_result(message)


M = TypeVar("M", bound=ConsumedMessage)


def drop_reassigned(messages: Sequence[M], assigned: Collection[int]) -> tuple[list[M], list[int]]:
    """Split off the records of partitions assigned during the poll that returned them.

    A batch can hold records fetched for an earlier assignment of a partition
    that was revoked and assigned again inside the same poll (consume_batch is a
    poll and a consume, and either may run the callbacks). Its new owner state
    starts from the committed offset, so those records must be read again from
    there, not applied on top: returns the records to keep and the partitions to
    rewind (those that had records dropped).
    """
    if not assigned:
        return list(messages), []
    kept = [m for m in messages if (m.partition() or 0) not in assigned]
    dropped = sorted({m.partition() or 0 for m in messages} & set(assigned))
    return kept, dropped


def consume_batch(consumer: Consumer, max_messages: int, timeout_s: float) -> list[Message]:
    """Wait up to ``timeout_s`` for the first record, then take what is already there.

    ``Consumer.consume(n, timeout)`` waits until it has n records or the timeout
    passes, which adds the whole timeout to every record's latency at low rates.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)]


def seek_to_committed(
    consumer: Consumer, partitions: list[TopicPartition], timeout_s: float
) -> None:
    """Rewind after an aborted transaction: each partition to its committed offset."""
    if not partitions:
        return
    for tp in consumer.committed(partitions, timeout=timeout_s):
        offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        consumer.seek(TopicPartition(tp.topic, tp.partition, offset))


def report_lag(consumer: Consumer, group: str, partitions: list[TopicPartition]) -> None:
    """Set the lag gauge from the consumer's own positions and the high watermarks
    of its last fetches (cached: no broker request, and right on the dev broker)."""
    for tp in consumer.position(partitions) if partitions else []:
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if tp.offset >= 0 and high is not None and high >= 0:
            CONSUMER_LAG.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(
                max(high - tp.offset, 0)
            )
