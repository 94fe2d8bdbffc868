"""Read one partition of a compacted changelog from its start to its end.

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
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from streams.config import Settings, consumer_config
from streams.wheel.partition import ChangelogRecord

log = logging.getLogger(__name__)

BATCH = 5_000
EMPTY_POLL_S = 0.2


@dataclass
class ReadPosition:
    """Where a read of a changelog partition ended: the offset of the next record
    (what a partition store records as applied). Set when the reading is done."""

    next_offset: int = -1


def read_partition(
    settings: Settings,
    topic: str,
    partition: int,
    role: str = "restore",
    start_offset: int | None = None,
    position_out: ReadPosition | None = None,
) -> Iterator[ChangelogRecord]:
    """Yield (key, value, headers) of every record from ``start_offset`` (None: the
    beginning) to the end, oldest first; ``position_out`` gets where it ended."""
    config: dict[str, Any] = consumer_config(
        settings,
        role,
        f"{settings.topic_prefix}kronwheel-{role}",  # never used to commit: assign() only
        **{
            "enable.partition.eof": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
            "queued.max.messages.kbytes": 256 * 1024,
        },
    )
    consumer = Consumer(config)
    tp = TopicPartition(
        topic, partition, OFFSET_BEGINNING if start_offset is None else start_offset
    )
    try:
        consumer.assign([tp])
        end = _queried_end(consumer, tp)
        position = start_offset or 0
        while True:
            batch = consumer.consume(BATCH, EMPTY_POLL_S)
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    log.warning("restore %s[%d]: %s", topic, partition, error)
                    continue
                position = (message.offset() or 0) + 1
                key = message.key()
                if key is None:
                    continue  # not a task record; nothing to restore
                headers = message.headers()
                yield key, message.value(), headers if isinstance(headers, list) else None
            # The client's position also steps over transaction markers, which
            # are never delivered but do take offsets (Kafka puts one at the end).
            fetched = consumer.position([tp])[0].offset
            position = max(position, fetched)
            _, cached_high = consumer.get_watermark_offsets(tp, cached=True)
            end = max(end, cached_high if cached_high is not None else -1)
            if not batch and position >= end:
                if position_out is not None:
                    position_out.next_offset = position
                return
    finally:
        consumer.close()


def watermarks(settings: Settings, topic: str, partition: int) -> tuple[int, int]:
    """(low, high) of a changelog partition, to check a store's recorded offset.

    The dev broker's high may be short of the real end (see above): a store
    whose offset lies beyond it is then rebuilt, which is slower, never wrong."""
    consumer = Consumer(
        consumer_config(settings, "restore", f"{settings.topic_prefix}kronwheel-restore")
    )
    try:
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10, cached=False
        )
        return int(low), int(high)
    finally:
        consumer.close()


def _queried_end(consumer: Consumer, tp: TopicPartition) -> int:
    deadline = time.monotonic() + 30
    while True:
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            return int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("waiting for %s[%d] watermarks: %s", tp.topic, tp.partition, exc)
