"""Read one partition of the compacted changelog ``tasks.state``, start to end.

Reading "to the end" is :func:`streams.kafka.reading.read_to_end` (which
explains why the end needs care on the dev broker); this module adds the
consumer settings of a restore and turns records into what
:meth:`PartitionWheel.restore` takes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from streams.config import Settings, consumer_config
from streams.kafka.reading import EMPTY_POLL_S, read_to_end
from streams.ports import ConsumedMessage
from streams.wheel.partition import ChangelogRecord


def read_partition(
    settings: Settings,
    topic: str,
    partition: int,
    role: str = "restore",
    start: int | None = None,
) -> Iterator[Message]:
    """Every record of one changelog partition from ``start`` (None: the beginning),
    oldest first."""
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
    try:
        yield from read_to_end(
            consumer, topic, partition, OFFSET_BEGINNING if start is None else start
        )
    finally:
        consumer.close()


# How long a reach check may take before it answers "no" (the store is then rebuilt).
REACH_WAIT_S = 5.0
_PAST_THE_END = (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)


def changelog_reaches(settings: Settings, topic: str, partition: int, offset: int) -> bool:
    """True when the partition's true end is at least ``offset``: a record at or after
    ``offset`` - 1 is read, or after a fetch the client's cached high watermark (which
    is right on the dev broker too) is at least ``offset``. Reading from ``offset`` - 1
    past the end is an error (no reset to the start, which would read the whole
    partition), so a shorter changelog answers no; so does no answer in time."""
    if offset <= 0:
        return True
    config: dict[str, Any] = consumer_config(
        settings,
        "restore",
        f"{settings.topic_prefix}kronwheel-restore",  # never used to commit: assign() only
        **{"enable.partition.eof": False, "auto.offset.reset": "error"},
    )
    consumer = Consumer(config)
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([TopicPartition(topic, partition, offset - 1)])
        deadline = time.monotonic() + REACH_WAIT_S
        while time.monotonic() < deadline:
            message = consumer.poll(EMPTY_POLL_S)
            if message is not None:
                error = message.error()
                if error is None and (message.offset() or 0) >= offset - 1:
                    return True
                if error is not None and error.code() in _PAST_THE_END:
                    return False
            _, cached_high = consumer.get_watermark_offsets(tp, cached=True)
            if cached_high is not None and cached_high >= 0:
                # Known after a fetch: the end, whatever the partition holds.
                return int(cached_high) >= offset
        return False
    finally:
        consumer.close()


def changelog_records(messages: Iterable[ConsumedMessage]) -> Iterator[ChangelogRecord]:
    """(key, value, headers) of each task record; records without a key are skipped."""
    for message in messages:
        key = message.key()
        if key is None or message.error() is not None:
            continue  # not a task record; nothing to restore
        headers = message.headers()
        yield key, message.value(), headers if isinstance(headers, list) else None
