"""Read the records of a topic inside a time window, on any Kafka-protocol broker.

Start positions come from ``offsets_for_times``, but nothing after that trusts
the broker's idea of time or of the end: every record's own timestamp is
checked against the window (the dev broker answers ``offsets_for_times`` with 0
or a batch boundary), and a partition is done when it is read to its end
(streams.kafka.reading, which knows the dev broker's wrong end offsets) or
shows a record well past the window's end. A scan commits nothing and joins no
group, so it can be interrupted and run again at any time.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from tqdm import tqdm

from streams.config import Settings, kafka_config
from streams.kafka.reading import ToEnd
from streams.ops.replay.window import Window

log = logging.getLogger(__name__)

BATCH = 1000
# A partition that sends no record for this long short of its end counts as
# drained: the end normally comes first, this only bounds a broker that never
# lets a reader reach the end it announced.
IDLE_S = 5.0
# A partition is done once it shows a record stamped this long after the window's
# end: timestamps are the producers' clocks, so records are not in strict time
# order, but kronwheel's producers stamp at send time and skew far less than this.
# It spares reading a month of tail to replay an hour.
PAST_END_SLACK_MS = 15 * 60_000


@dataclass
class ScanStats:
    read: int = 0
    in_window: int = 0
    before_window: int = 0
    after_window: int = 0
    per_partition: dict[int, int] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"read {self.read} records, {self.in_window} in the window "
            f"({self.before_window} before it, {self.after_window} after it skipped)"
        )


def scan_consumer(settings: Settings, purpose: str) -> Consumer:
    """A group-less reader: assign() only, no commits, committed records only."""
    return Consumer(
        kafka_config(
            settings,
            f"replay-{purpose}",
            **{
                # librdkafka wants a group id even for assign(); nothing is committed under it.
                "group.id": f"kronwheel-replay-{purpose}-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,
            },
        )
    )


def start_offsets(
    consumer: Consumer, topic: str, window: Window, timeout_s: float = 10.0
) -> dict[int, int]:
    """Where each partition's scan starts; partitions with nothing at or after the
    window's start (offset -1 from the broker) are left out."""
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise RuntimeError(f"topic {topic}: {metadata.error}")
    partitions = sorted(metadata.partitions)
    if window.start_ms is None:
        return {p: OFFSET_BEGINNING for p in partitions}
    found = consumer.offsets_for_times(
        [TopicPartition(topic, p, window.start_ms) for p in partitions], timeout=timeout_s
    )
    starts = {}
    for tp in found:
        if tp.error is not None:
            raise RuntimeError(f"offsets_for_times {topic}[{tp.partition}]: {tp.error}")
        if tp.offset >= 0:
            starts[tp.partition] = tp.offset
    return starts


def scan_window(
    settings: Settings,
    topic: str,
    window: Window,
    stats: ScanStats,
    *,
    progress: bool = True,
    purpose: str = "scan",
) -> Iterator[list[Message]]:
    """Yield batches of the records of ``topic`` whose timestamps fall in ``window``."""
    consumer = scan_consumer(settings, purpose)
    bar = tqdm(
        desc=f"{purpose} {topic}",
        unit="rec",
        unit_scale=True,
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    try:
        starts = start_offsets(consumer, topic, window)
        reader = ToEnd(consumer, topic, starts, give_up_idle_s=IDLE_S, batch=BATCH)
        first_offsets: dict[int, int] = {}
        done: set[int] = set()
        for messages in reader.batches():
            batch: list[Message] = []
            for message in messages:
                partition = message.partition() or 0
                if partition in done:
                    continue  # past the window: not part of this scan
                first_offsets.setdefault(partition, message.offset() or 0)
                stats.read += 1
                _, timestamp_ms = message.timestamp()
                if window.start_ms is not None and timestamp_ms < window.start_ms:
                    stats.before_window += 1
                elif window.end_ms is not None and timestamp_ms > window.end_ms:
                    stats.after_window += 1
                    if timestamp_ms > window.end_ms + PAST_END_SLACK_MS:
                        done.add(partition)
                        reader.stop(partition)
                else:
                    stats.in_window += 1
                    stats.per_partition[partition] = stats.per_partition.get(partition, 0) + 1
                    batch.append(message)
            bar.total = _estimated_total(consumer, topic, first_offsets, starts)
            bar.update(len(messages))
            if batch:
                yield batch
    finally:
        bar.close()
        consumer.close()


def _estimated_total(
    consumer: Consumer, topic: str, first_offsets: dict[int, int], starts: dict[int, int]
) -> int:
    """Records to read, for the ETA: cached high watermarks (right after a fetch)
    minus where each partition started."""
    total = 0
    for partition in starts:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        begin = first_offsets.get(partition, starts[partition])
        if begin < 0:
            begin = max(low, 0)
        total += max(0, high - begin)
    return total


def log_malformed(logger: logging.Logger, what: str, message: Message, error: Exception) -> None:
    """One line per skipped record, with topic[partition]@offset as text and as fields."""
    logger.warning(
        "skipped malformed %s %s[%s]@%s: %s",
        what,
        message.topic(),
        message.partition(),
        message.offset(),
        error,
        extra={
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
        },
    )
