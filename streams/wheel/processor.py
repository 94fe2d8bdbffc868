"""The processor loop: tasks.commands -> wheels in local state -> tasks.due.

A consume-transform-produce loop on confluent-kafka, exactly once:

1. ``consume`` a batch of commands (waiting no longer than the next timer);
2. apply them, and fire every timer that is due, in the partitions' wheels
   (:mod:`streams.wheel.partition`): that yields changelog records, due events and
   dead letters;
3. write all of them, plus the consumed offsets
   (``send_offsets_to_transaction``), in ONE Kafka transaction and commit.

Firings that come from the clock are in the same transaction as the
changelog record that moves their task on, so a crash before the commit
loses both (on Kafka) and the restored task fires again with the same fire
id; a crash after it has both. A transaction that must be aborted rewinds:
each partition is restored again from the changelog and the consumer goes
back to the committed offsets.

On assignment a partition is restored from ``tasks.state`` before its first
command is read, then what fell due while nobody owned it fires under each
task's misfire policy. The transactional id is fixed per processor slot
(``KRONWHEEL_SLOT``): a restarted processor fences its dead predecessor and
ends its open transaction at once, instead of after the transaction timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streams import metrics
from streams.config import Settings, consumer_config, producer_config
from streams.core.clock import Clock, SystemClock
from streams.kafka.clients import (
    commit_retrying,
    consume_batch,
    produce_waiting,
    report_lag,
    seek_to_committed,
)
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS, STATE
from streams.ops.server import start_ops_server
from streams.wheel.changelog import read_partition
from streams.wheel.partition import Output, PartitionWheel, WheelConfig
from streams.wheel.statestore import PartitionStore

log = logging.getLogger(__name__)

# The loop never blocks longer than this, so a command due at once is seen soon.
MAX_POLL_WAIT_S = 0.05
# Commands per transaction: bounds the work lost to an abort and the time
# between commits under load.
MAX_BATCH = 2_000
TRANSACTION_TIMEOUT_MS = 10_000
COMMIT_TIMEOUT_S = 10
COMMIT_ATTEMPTS = 3
SIZES_EVERY_S = 5.0


def state_dir(data_dir: Path, slot: str) -> Path:
    return data_dir / "state" / f"processor-{slot}"


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-processors"


def transactional_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-processor-{settings.slot}"


class Processor:
    def __init__(
        self, settings: Settings, clock: Clock | None = None, config: WheelConfig | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.config = config or WheelConfig(
            horizon_ms=settings.wheel_horizon_ms, misfire_grace_ms=settings.misfire_grace_ms
        )
        self.partitions: dict[int, PartitionWheel] = {}
        self._topics = {
            name: settings.topic(name) for name in (COMMANDS, STATE, DUE, RESULTS, DEAD)
        }
        self._consumer = Consumer(
            consumer_config(
                settings,
                "processor",
                group_id(settings),
                **{"enable.partition.eof": False},
            )
        )
        self._producer = Producer(
            producer_config(
                settings,
                "processor",
                **{
                    "transactional.id": transactional_id(settings),
                    "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                },
            )
        )
        self._state_dir = state_dir(settings.data_dir, settings.slot)
        self._pending: list[Output] = []  # from restores, written with the next transaction
        self._stop = threading.Event()
        self._assigned_at_least_once = False
        self.committed_transactions = 0

    def stop(self) -> None:
        self._stop.set()

    # --- the loop ----------------------------------------------------------------

    def run(self) -> None:
        self._producer.init_transactions(30)  # fences a dead predecessor in this slot
        self._consumer.subscribe(
            [self._topics[COMMANDS]],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        ops = start_ops_server(
            self.settings.metrics_host, self.settings.metrics_port, self._readiness, "processor"
        )
        log.info(
            "processor started: group %s, transactional id %s",
            group_id(self.settings),
            transactional_id(self.settings),
        )
        sizes_at = 0.0
        try:
            while not self._stop.is_set():
                messages = consume_batch(self._consumer, MAX_BATCH, self._poll_wait_s())
                self._step(messages)
                if time.monotonic() - sizes_at > SIZES_EVERY_S:
                    sizes_at = time.monotonic()
                    self._report_gauges()
        finally:
            if ops is not None:
                ops.stop()
            self._consumer.close()
            self._producer.flush(10)
            for wheel in self.partitions.values():
                wheel.close()
            log.info("processor stopped after %d transactions", self.committed_transactions)

    def _step(self, messages: list[Message]) -> None:
        now_ms = self.clock.now_ms()
        outputs, self._pending = self._pending, []
        consumed = False
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consume error: %s", error)
                continue
            wheel = self.partitions.get(message.partition() or 0)
            if wheel is None:  # revoked while in flight: its new owner reads it again
                continue
            consumed = True
            wheel.handle(message, now_ms)
        for wheel in self.partitions.values():
            wheel.tick(now_ms)
            outputs.extend(wheel.take_outputs())
        if outputs or consumed:
            self._transact(outputs, consumed)
        for wheel in self.partitions.values():
            wheel.store.commit()

    def _report_gauges(self) -> None:
        for wheel in self.partitions.values():
            wheel.report_sizes()
        report_lag(self._consumer, group_id(self.settings), self._owned())

    def _poll_wait_s(self) -> float:
        if self._pending:
            return 0.0
        wakeups = [w for p in self.partitions.values() if (w := p.next_wakeup_ms()) is not None]
        if not wakeups:
            return MAX_POLL_WAIT_S
        return max(0.0, min(MAX_POLL_WAIT_S, (min(wakeups) - self.clock.now_ms()) / 1000))

    # --- transactions ------------------------------------------------------------

    def _transact(self, outputs: list[Output], consumed: bool) -> None:
        try:
            self._producer.begin_transaction()
            for output in outputs:
                self._produce(output)
            if consumed:
                positions = [tp for tp in self._consumer.position(self._owned()) if tp.offset >= 0]
                self._producer.send_offsets_to_transaction(
                    positions, self._consumer.consumer_group_metadata(), 30
                )
            self._commit()
            self.committed_transactions += 1
            metrics.TRANSACTIONS.labels(result="committed").inc()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal() or not (error.txn_requires_abort() or error.retriable()):
                # Fenced by a newer instance of this slot, or worse: this
                # process must not write again. Exit; the supervisor restarts it.
                log.error("fatal transaction error, exiting: %s", error)
                raise
            log.warning("transaction aborted, rewinding: %s", error)
            self._producer.abort_transaction(30)
            metrics.TRANSACTIONS.labels(result="aborted").inc()
            self._rewind()

    def _commit(self) -> None:
        # A commit that keeps timing out leaves this process unsure whether its
        # writes landed, while it holds partitions nobody else can fire. That is
        # also how the dev broker shows a fenced producer (it drops the
        # connection instead of answering PRODUCER_FENCED). After a bounded
        # wait, give up as fatal: the restarted process restores from the changelog.
        try:
            commit_retrying(self._producer, COMMIT_ATTEMPTS, COMMIT_TIMEOUT_S)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            raise KafkaException(
                KafkaError(KafkaError._FATAL, f"commit failed: {error}", fatal=True)
            ) from exc

    def _produce(self, output: Output) -> None:
        produce_waiting(
            self._producer,
            self._topics[output.topic],
            output.key,
            output.value,
            headers=output.headers,
            # -1: let the partitioner choose (the one-partition dead letter topic)
            partition=-1 if output.partition is None else output.partition,
        )

    def _rewind(self) -> None:
        """After an abort: rebuild every partition from the changelog, seek to committed."""
        owned = self._owned()
        for wheel in self.partitions.values():
            wheel.close()
        self.partitions.clear()
        self._pending = []
        for tp in owned:
            self._restore(tp.partition)
        seek_to_committed(self._consumer, owned, 30)

    def _owned(self) -> list[TopicPartition]:
        return [TopicPartition(self._topics[COMMANDS], p) for p in sorted(self.partitions)]

    # --- partitions come and go -----------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        for number in numbers:
            self._restore(number)
        self._assigned_at_least_once = True
        log.info("assigned %s (restored; owns %s)", numbers, sorted(self.partitions))

    def _restore(self, number: int) -> None:
        started = time.monotonic()
        store = PartitionStore(self._state_dir / f"{self._topics[STATE]}-{number}.sqlite3")
        store.reset()  # the whole changelog is read below: start from an empty store
        wheel = PartitionWheel(number, store, self.clock.now_ms(), self.config)
        records = wheel.restore(read_partition(self.settings, self._topics[STATE], number))
        self._pending.extend(wheel.start(self.clock.now_ms()))
        self.partitions[number] = wheel
        wheel.report_sizes()
        elapsed = time.monotonic() - started
        metrics.RESTORE_DURATION.observe(elapsed)
        log.info(
            "restored %s[%d]: %d records, %d live tasks, %d timers in the wheel, in %.2f s",
            self._topics[STATE],
            number,
            records,
            len(store),
            len(wheel.wheel),
            elapsed,
        )

    def _on_revoke(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        # No transaction is open here: callbacks run inside consume(), and the
        # loop commits before it consumes again.
        self._drop(partitions, "revoked")

    def _on_lost(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        self._drop(partitions, "lost")

    def _drop(self, partitions: Iterable[TopicPartition], why: str) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        for number in numbers:
            wheel = self.partitions.pop(number, None)
            if wheel is not None:
                wheel.close()
        # Outputs from a restore of a partition we no longer own must not be written.
        self._pending = [o for o in self._pending if o.partition not in numbers]
        log.info("%s %s (owns %s)", why, numbers, sorted(self.partitions))

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        ready = self._assigned_at_least_once and not self._stop.is_set()
        return ready, {"partitions": sorted(self.partitions)}
