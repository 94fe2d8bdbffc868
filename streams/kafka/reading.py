"""Read partitions to their end: the one implementation every reader uses (the
changelog restore, replay scans, ``kronwheel status``, the test harness).

"The end" needs care. On Apache Kafka the high watermark (or, for a
read_committed reader, the last stable offset) is the end. The development
broker reports end offsets wrong (the start of the last record batch + 1), so
the reader does not trust a single answer: a partition is done only when the
reader has reached the largest end it has been told (queried, or cached after
a fetch, which is right on both) AND the consumer has had nothing more for a
short while (one empty poll by default). That rule is correct on any broker;
it only costs one empty poll.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

log = logging.getLogger(__name__)

BATCH = 5_000
EMPTY_POLL_S = 0.2
WATERMARK_WAIT_S = 30.0


class ToEnd:
    """Reads ``starts`` (partition -> first offset, or OFFSET_BEGINNING) of one topic
    to the end, in batches, on a consumer used for nothing else (assign only; it
    never commits).

    * ``settle_s``: how long the partitions must have been quiet, at their ends,
      before the read is over (``EMPTY_POLL_S``: one empty poll).
    * ``give_up_idle_s``: stop anyway, with a warning, after this long without a
      record (for tools that must end even if a broker never reaches the end it
      announced, e.g. behind an open transaction); None waits for the end.

    A caller may :meth:`stop` a partition early (a replay scan past its window).
    After the read, :attr:`ends` holds the largest end seen per partition.
    """

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        starts: Mapping[int, int],
        *,
        settle_s: float = EMPTY_POLL_S,
        give_up_idle_s: float | None = None,
        batch: int = BATCH,
    ) -> None:
        self.consumer = consumer
        self.topic = topic
        self.starts = dict(starts)
        self.settle_s = settle_s
        self.give_up_idle_s = give_up_idle_s
        self.batch = batch
        self.ends: dict[int, int] = {}
        self._remaining = set(self.starts)
        self._tps = {p: TopicPartition(topic, p) for p in self.starts}

    def stop(self, partition: int) -> None:
        """Read no more of this partition."""
        if partition in self._remaining:
            self._remaining.discard(partition)
            self.consumer.pause([self._tps[partition]])

    def batches(self) -> Iterator[list[Message]]:
        if not self.starts:
            return
        self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in self.starts.items()])
        self.ends = {p: queried_end(self.consumer, tp) for p, tp in self._tps.items()}
        read_to: dict[int, int] = {p: max(o, 0) for p, o in self.starts.items()}
        last_record = time.monotonic()
        while self._remaining:
            messages = self.consumer.consume(self.batch, EMPTY_POLL_S)
            now = time.monotonic()
            out: list[Message] = []
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue  # an event, not the end: the rule below decides
                    if error.fatal():
                        raise KafkaException(error)
                    log.warning("reading %s[%s]: %s", self.topic, message.partition(), error)
                    continue
                partition = message.partition() or 0
                if partition not in self._remaining:
                    continue  # stopped: not part of this read any more
                read_to[partition] = (message.offset() or 0) + 1
                out.append(message)
            if out:
                last_record = now
                yield out
                continue
            self._update_ends(read_to)
            # This poll was empty; with a longer settle time, so were the ones before.
            if self.settle_s <= EMPTY_POLL_S or now - last_record >= self.settle_s:
                for partition in list(self._remaining):
                    if read_to[partition] >= self.ends[partition]:
                        self._remaining.discard(partition)
            if (
                self._remaining
                and self.give_up_idle_s is not None
                and now - last_record > self.give_up_idle_s
            ):
                log.warning(
                    "%s: nothing read for %.0f s short of the end on %s; treating as drained",
                    self.topic,
                    self.give_up_idle_s,
                    sorted(self._remaining),
                )
                return

    def _update_ends(self, read_to: dict[int, int]) -> None:
        positions = self.consumer.position([self._tps[p] for p in self._remaining])
        for tp in positions:
            # The client's position also steps over transaction markers, which are
            # never delivered but do take offsets (Kafka puts one at the end).
            read_to[tp.partition] = max(read_to[tp.partition], tp.offset)
            _, cached_high = self.consumer.get_watermark_offsets(tp, cached=True)
            if cached_high is not None:
                self.ends[tp.partition] = max(self.ends[tp.partition], cached_high)


def read_to_end(
    consumer: Consumer, topic: str, partition: int, start: int = OFFSET_BEGINNING
) -> Iterator[Message]:
    """Every record of one partition from ``start`` to its end, oldest first."""
    for batch in ToEnd(consumer, topic, {partition: start}).batches():
        yield from batch


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
