"""Read a partition to its end: the one implementation every reader uses.

"The end" needs care. On Apache Kafka the high watermark (or, for a
read_committed reader, the last stable offset) is the end. The development
broker reports end offsets wrong (the start of the last record batch + 1), so
the reader does not trust a single answer: it is done only when it has
reached the largest end it has been told (queried, or cached after a fetch,
which is right on both) AND a poll has come back empty. That rule is correct
on any broker; it only costs one empty poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

log = logging.getLogger(__name__)

BATCH = 5_000
EMPTY_POLL_S = 0.2
WATERMARK_WAIT_S = 30.0


def read_to_end(
    consumer: Consumer, topic: str, partition: int, start: int = OFFSET_BEGINNING
) -> Iterator[Message]:
    """Yield every record of one partition from ``start`` to its end, oldest first.

    ``consumer`` is a fresh one that is only used for this read (it is assigned
    the partition; it never commits). Non-fatal consume errors are logged and
    skipped; a fatal one raises.
    """
    tp = TopicPartition(topic, partition, start)
    consumer.assign([tp])
    end = queried_end(consumer, tp)
    position = 0
    while True:
        batch = consumer.consume(BATCH, EMPTY_POLL_S)
        for message in batch:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("reading %s[%d]: %s", topic, partition, error)
                continue
            position = (message.offset() or 0) + 1
            yield message
        # The client's position also steps over transaction markers, which
        # are never delivered but do take offsets (Kafka puts one at the end).
        fetched = consumer.position([tp])[0].offset
        position = max(position, fetched)
        _, cached_high = consumer.get_watermark_offsets(tp, cached=True)
        end = max(end, cached_high if cached_high is not None else -1)
        if not batch and position >= end:
            return


def queried_end(consumer: Consumer, tp: TopicPartition) -> int:
    """The high watermark as the broker answers it (waiting while the partition has
    no leader yet). A lower bound of the end on the dev broker, not the end."""
    deadline = time.monotonic() + WATERMARK_WAIT_S
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            return int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for %s[%d] watermarks: %s", tp.topic, tp.partition, exc)
