"""Which partitions of tasks.due this dispatcher owns, and their states.

The loop thread reads and changes the partition states; the Kafka thread runs
the rebalance callbacks inside a poll, which add, commit and drop them. Every
change holds :attr:`Ownership.lock`.

Three callbacks (Kafka runs them while the member still holds the partitions):

* assigned: a fresh state, its recent fire ids loaded from the history store;
* revoked: commit what is finished first, so the next owner does not redo it,
  then drop the rest (the next owner re-runs or re-emits it);
* lost: another member owns them already, a commit would be fenced: drop.

A partition assigned and dropped inside the same poll may come back with
records fetched for its earlier assignment: :meth:`Ownership.split_polled`
splits those off to be read again from the committed offset.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TypeVar

from streams.core.clock import Clock
from streams.dispatching.dedupe import RecentFireIds
from streams.dispatching.outputs import RECENT_WINDOW_MS, PartitionState, release
from streams.kafka.clients import drop_reassigned
from streams.kafka.transactions import TransactionAborted
from streams.ports import ConsumedMessage, DispatcherKafka, ExecutionHistory

log = logging.getLogger("streams.dispatching.dispatcher")

M = TypeVar("M", bound=ConsumedMessage)


class Ownership:
    def __init__(self, store: ExecutionHistory, clock: Clock, kafka: DispatcherKafka) -> None:
        self.store = store
        self.clock = clock
        self.kafka = kafka
        self.partitions: dict[int, PartitionState] = {}
        self.lock = threading.Lock()
        # Set once the loop failed: a revoke then commits nothing more.
        self.failed = False
        # Partitions assigned, and revoked or lost, by the callbacks of the current poll.
        self._assigned_in_poll: set[int] = set()
        self._dropped_in_poll: set[int] = set()

    def poll_starts(self) -> None:
        with self.lock:
            self._assigned_in_poll.clear()
            self._dropped_in_poll.clear()

    def split_polled(self, polled: Sequence[M]) -> tuple[list[M], list[int]]:
        """The poll's records to handle, and the partitions to rewind (see the module doc)."""
        with self.lock:
            reassigned = self._assigned_in_poll & self._dropped_in_poll
            return drop_reassigned(polled, reassigned)

    def on_assign(self, partitions: list[int]) -> None:
        now = self.clock.now_ms()
        floor = now - RECENT_WINDOW_MS
        for partition in partitions:
            recent = RecentFireIds(floor, self.store.recent_fire_ids(partition, floor))
            with self.lock:
                self.partitions[partition] = PartitionState(recent=recent, assigned_at_ms=now)
                self._assigned_in_poll.add(partition)
        log.info("assigned %s", sorted(partitions))

    def on_revoke(self, partitions: list[int]) -> None:
        # Commit what is done before the partitions move, so the next owner does not
        # redo it; unfinished work is dropped (the next owner re-runs or re-emits it).
        revoked = list(partitions)
        if self.failed:
            log.info("revoked %s without commit (stopping after an error)", sorted(revoked))
            return
        with self.lock:
            outputs, offsets = release(self.partitions, revoked)
            for partition in revoked:
                self.partitions.pop(partition, None)
            self._dropped_in_poll.update(revoked)
        if offsets:
            try:
                self.kafka.transact(outputs, offsets)
            except TransactionAborted:
                log.warning("commit on revoke aborted; the next owner re-emits from the store")
        log.info("revoked %s", sorted(revoked))

    def on_lost(self, partitions: list[int]) -> None:
        # Another dispatcher owns them already: committing would be fenced. Drop
        # in-flight state; whatever was recorded is re-emitted by the new owner.
        with self.lock:
            for partition in partitions:
                self.partitions.pop(partition, None)
            self._dropped_in_poll.update(partitions)
        log.warning("lost %s", sorted(partitions))
