"""Restoring a partition's store from the changelog, a slice at a time.

A partition assigned to a processor that already owns others must not stop
them from firing while it is restored (a full rebuild of a big partition takes
minutes). So the loop pauses its commands, and between its steps applies the
next slice (:data:`SLICE_RECORDS` changelog records) of the partition's
restore; when the changelog is drained, the store commits with the offset it
reached, the partition gets its wheel and its commands are resumed from the
committed offset. Until then nothing of the partition is consumed, fired or
committed. A revoke (or loss) in the middle :meth:`~PartitionRestore.abandon`\\ s
it: the slices written so far are rolled back (a store that had a checkpoint
keeps it) or the half-built file removed, and the changelog reader closed.

A slice runs on the loop's thread, between steps, so there is no locking and
the loop's exactly-once reasoning is unchanged: the cost to the partitions
already owned is one slice of work per step (about 0.05 s), plus, once per
restore, the reader's check that it reached the changelog's end (one empty
poll, :data:`streams.kafka.reading.EMPTY_POLL_S`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

from streams import metrics
from streams.core.lifecycle import next_due_ms
from streams.kafka.records import decode_state
from streams.ports import ConsumedMessage, ProcessorKafka
from streams.wheel.outputs import _NO_HEADER, due_from_header
from streams.wheel.partition import PartitionWheel, WheelConfig
from streams.wheel.statestore import PartitionStore

log = logging.getLogger(__name__)

# Changelog records applied per slice: about 0.05 s of work, so the partitions
# already owned fire at most that much later while another one is restored.
SLICE_RECORDS = 20_000

Row = tuple[str, int | None, bytes | None]


class PartitionRestore:
    """One partition's restore: the store this slot left, caught up from the changelog
    offset it recorded, or (none, or not consistent with the changelog) rebuilt from
    the changelog's start."""

    def __init__(
        self, number: int, path: Path, kafka: ProcessorKafka, topic: str, now_ms: int
    ) -> None:
        self.number = number
        self.topic = topic
        self.started = time.monotonic()
        self.store = PartitionStore(path)
        low, high = kafka.changelog_watermarks(number)
        self.start = self.store.resume_from(
            low, high, now_ms, reaches=lambda offset: kafka.changelog_reaches(number, offset)
        )
        if self.start is None:
            self.store.reset()
        self.next_offset = low if self.start is None else self.start
        self.records = 0
        self._messages: Iterator[ConsumedMessage] = kafka.read_changelog(number, self.start)
        self.done = False

    def advance(self, max_records: int | None) -> bool:
        """Apply up to ``max_records`` more changelog records (None: all the rest);
        True once the changelog is drained (then :meth:`finish`)."""
        rows: list[Row] = []
        while max_records is None or len(rows) < max_records:
            message = next(self._messages, None)
            if message is None:
                self.done = True
                break
            offset = message.offset()
            if offset is not None:
                self.next_offset = max(self.next_offset, offset + 1)
            key = message.key()
            if key is None or message.error() is not None:
                continue  # not a task record; nothing to restore
            rows.append(_row(key, message.value(), message.headers()))
        self.records += len(rows)
        self.store.load_part(rows)
        return self.done

    def finish(self, now_ms: int, config: WheelConfig) -> PartitionWheel:
        """Commit the store with the offset reached; the partition's wheel, not yet
        started (:meth:`PartitionWheel.start` fires what fell due meanwhile)."""
        self.store.end_load(self.next_offset, now_ms)
        self.store.create_due_index()
        wheel = PartitionWheel(self.number, self.store, now_ms, config)
        elapsed = time.monotonic() - self.started
        metrics.RESTORE_DURATION.observe(elapsed)
        log.info(
            "restored %s[%d] from offset %s: %d records, %d live tasks, in %.2f s",
            self.topic,
            self.number,
            "the start" if self.start is None else self.start,
            self.records,
            len(self.store),
            elapsed,
        )
        return wheel

    def abandon(self) -> None:
        """Stop half way: nothing of this restore stays (see the module docstring)."""
        close = getattr(self._messages, "close", None)
        if close is not None:
            close()  # a generator: closes its changelog consumer
        self.store.abandon()
        log.info("restore of %s[%d] abandoned", self.topic, self.number)


def _row(key: bytes, value: bytes | None, headers: object) -> Row:
    """A changelog record as the store's row: (task id, due, state); None state =
    tombstone. The due time comes from the record's header, or from its state."""
    if value is None:
        return key.decode(), None, None
    due_ms = due_from_header(headers if isinstance(headers, list) else None)
    if due_ms == _NO_HEADER:
        due_ms = next_due_ms(decode_state(value))
    return key.decode(), due_ms, value
