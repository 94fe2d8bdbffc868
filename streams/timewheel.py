"""The timewheel processor role: tasks.commands -> local task table -> tasks.due.

WALKING-SKELETON VERSION. It consumes commands, keeps the live tasks of its
partitions in memory, writes their state to the changelog ``tasks.state`` and
emits a DueTask when each falls due. It is deliberately simple, and it is NOT
crash-safe yet: it does not restore from the changelog on assignment and does
not use transactions, so a SIGKILL loses the pending tasks of its partitions.
The timing-wheel issue replaces it with the hierarchical wheel, changelog
restore and exactly-once transactions.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from streams.config import Settings, consumer_config, producer_config
from streams.core.clock import Clock, SystemClock
from streams.core.errors import MalformedEvent
from streams.core.tasktable import Effects, TaskTable
from streams.kafka_io import consume_batch
from streams.records import (
    dead_letter_for,
    decode_command,
    encode_dead_letter,
    encode_due,
    encode_state,
)
from streams.topics import COMMANDS, DEAD, DUE, STATE

log = logging.getLogger(__name__)

# Longest a poll may block while nothing is due: bounds how late a command that
# arrives during the wait is noticed when it is itself due at once.
MAX_POLL_WAIT_S = 0.05
MAX_BATCH = 500


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-processors"


class Processor:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.tables: dict[int, TaskTable] = {}
        self._topics = {name: settings.topic(name) for name in (COMMANDS, STATE, DUE, DEAD)}
        self._consumer = Consumer(consumer_config(settings, "processor", group_id(settings)))
        self._producer = Producer(producer_config(settings, "processor"))
        self._stop = threading.Event()
        self.fired = 0

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        self._consumer.subscribe(
            [self._topics[COMMANDS]],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("processor started, group %s", group_id(self.settings))
        try:
            while not self._stop.is_set():
                messages = consume_batch(self._consumer, MAX_BATCH, self._poll_wait_s())
                now_ms = self.clock.now_ms()
                for message in messages:
                    self._handle(message, now_ms)
                for partition, table in self.tables.items():
                    self._emit(partition, table.fire_due(self.clock.now_ms()))
                self._producer.poll(0)
                if messages:
                    # State and dead letters must be on the broker before the
                    # commands that caused them are marked consumed.
                    self._producer.flush(10)
                    self._consumer.commit(asynchronous=True)
        finally:
            self._producer.flush(10)
            self._consumer.close()
            log.info("processor stopped after %d firings", self.fired)

    def _poll_wait_s(self) -> float:
        dues = [d for t in self.tables.values() if (d := t.next_due_ms()) is not None]
        if not dues:
            return MAX_POLL_WAIT_S
        return max(0.0, min(MAX_POLL_WAIT_S, (min(dues) - self.clock.now_ms()) / 1000))

    def _handle(self, message: Message, now_ms: int) -> None:
        error = message.error()
        if error is not None:
            log.warning("consume error: %s", error)
            return
        partition = message.partition() or 0
        table = self.tables.setdefault(partition, TaskTable())
        try:
            command = decode_command(message.value() or b"")
            self._emit(partition, table.apply(command, now_ms))
        except MalformedEvent as exc:
            self._dead_letter(message, str(exc), now_ms)

    def _emit(self, partition: int, effects: Effects) -> None:
        for change in effects.changes:
            self._producer.produce(
                self._topics[STATE],
                key=change.task_id.encode(),
                value=encode_state(change.state) if change.state else None,
                partition=partition,
            )
        for due in effects.firings:
            self._producer.produce(
                self._topics[DUE],
                key=due.task_id.encode(),
                value=encode_due(due),
                partition=partition,
            )
            self.fired += 1
            log.debug(
                "fired %s lateness=%dms", due.fire_id, due.emitted_at_ms - due.scheduled_at_ms
            )

    def _dead_letter(self, message: Message, reason: str, now_ms: int) -> None:
        log.warning(
            "dead letter %s[%s]@%s: %s",
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )
        dead = dead_letter_for(message, reason, now_ms)
        self._producer.produce(
            self._topics[DEAD], key=message.key(), value=encode_dead_letter(dead)
        )

    def _on_assign(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.tables.setdefault(tp.partition, TaskTable())
        log.info("assigned %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self.tables.pop(tp.partition, None)
        log.info("revoked %s", sorted(tp.partition for tp in partitions))


def run_processor(settings: Settings) -> None:
    processor = Processor(settings)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: processor.stop())
    processor.run()
