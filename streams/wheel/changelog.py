"""Read one partition of the compacted changelog ``tasks.state``, start to end.

Reading "to the end" is :func:`streams.kafka.reading.read_to_end` (which
explains why the end needs care on the dev broker); this module adds the
consumer settings of a restore and turns records into what
:meth:`PartitionWheel.restore` takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from confluent_kafka import Consumer, Message

from streams.config import Settings, consumer_config
from streams.kafka.reading import read_to_end
from streams.ports import ConsumedMessage
from streams.wheel.partition import ChangelogRecord


def read_partition(
    settings: Settings, topic: str, partition: int, role: str = "restore"
) -> Iterator[Message]:
    """Every record of one changelog partition, oldest first."""
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
        yield from read_to_end(consumer, topic, partition)
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
