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
each partition's store rolls back its uncommitted step (its rows are
committed to SQLite only after the Kafka transaction), its wheel is rebuilt
from it, and the consumer goes back to the committed offsets.

On assignment a partition is restored before its first command is read: the
store this slot left, caught up from the changelog offset it recorded, or
rebuilt from ``tasks.state``'s start (see :mod:`streams.wheel.statestore`);
then what fell due while nobody owned it fires under each task's misfire
policy. A processor that owns nothing yet restores its assignment at once;
one that owns partitions keeps firing them: the new ones are paused and
restored a slice per step (:mod:`streams.wheel.restoring`), then resumed.
The transactional id is fixed per processor slot (``KRONWHEEL_SLOT``): a
restarted processor fences its dead predecessor and ends its open transaction
at once, instead of after the transaction timeout; with static membership
(``KRONWHEEL_STATIC_MEMBERSHIP``) the group hands it its partitions back at
once too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from streams import metrics
from streams.config import Settings
from streams.core.clock import Clock, SystemClock
from streams.core.validation import Rules
from streams.kafka.clients import drop_reassigned
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS, STATE
from streams.kafka.transactions import FatalKafkaError, TransactionAborted
from streams.ops.server import start_ops_server
from streams.ports import ConsumedMessage, OutRecord, ProcessorKafka
from streams.wheel.kafka_side import ConfluentProcessorKafka, group_id, transactional_id
from streams.wheel.partition import Output, PartitionWheel, WheelConfig
from streams.wheel.restoring import SLICE_RECORDS, PartitionRestore

__all__ = ["Processor", "group_id", "state_dir", "transactional_id"]

log = logging.getLogger(__name__)

# The loop never blocks longer than this, so a command due at once is seen soon.
MAX_POLL_WAIT_S = 0.05
# Nor shorter than this when it waits for a timer: the timers due within it go out
# together, in one transaction. Each transaction costs the broker a produce request
# per partition written (librdkafka sends one partition per request), a marker on
# each and four control requests, whatever it carries. With timers every 0.6 ms
# (1,667 firings/s) it took a step per commit (about 15 ms); at this floor the
# processor made about half as many transactions, the dev broker used 10-30 %
# less CPU and Kafka's 56 % less, for firings up to this much later
# (docs/results.md). Commands never wait for it: a poll returns as soon as one
# arrives.
MIN_TIMER_WAIT_S = 0.025
# Commands per transaction: bounds the work lost to an abort and the time
# between commits under load.
MAX_BATCH = 2_000
SIZES_EVERY_S = 5.0
# How often the partition stores record the changelog offset they hold; a
# restart in the same slot reads at most about this much of the changelog again.
CHECKPOINT_EVERY_MS = 5_000


def state_dir(data_dir: Path, slot: str) -> Path:
    return data_dir / "state" / f"processor-{slot}"


class Processor:
    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        config: WheelConfig | None = None,
        kafka: ProcessorKafka | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.config = config or WheelConfig(
            horizon_ms=settings.wheel_horizon_ms,
            misfire_grace_ms=settings.misfire_grace_ms,
            rules=Rules(topic_prefix=settings.topic_prefix),
        )
        self.partitions: dict[int, PartitionWheel] = {}
        self._topics = {
            name: settings.topic(name) for name in (COMMANDS, STATE, DUE, RESULTS, DEAD)
        }
        self.kafka: ProcessorKafka = kafka or ConfluentProcessorKafka(settings)
        self._state_dir = state_dir(settings.data_dir, settings.slot)
        self._pending: list[Output] = []  # from restores, written with the next transaction
        self._stop = threading.Event()
        self._assigned_at_least_once = False
        self.committed_transactions = 0
        self._sizes_at = 0.0
        self._checkpointed_ms = 0
        # Partitions assigned, and revoked or lost, by the callbacks of the current poll.
        self._assigned_in_poll: set[int] = set()
        self._dropped_in_poll: set[int] = set()
        # Partitions assigned while others were owned, restored a slice per step, oldest first.
        self._restoring: dict[int, PartitionRestore] = {}
        self.restore_slice_records = SLICE_RECORDS

    def stop(self) -> None:
        self._stop.set()

    # --- the loop ----------------------------------------------------------------

    def run(self) -> None:
        ops = start_ops_server(
            self.settings.metrics_host, self.settings.metrics_port, self._readiness, "processor"
        )
        try:
            self.start()
            while not self._stop.is_set():
                self.run_once()
        finally:
            if ops is not None:
                ops.stop()
            self.close()

    def start(self) -> None:
        """Fence a predecessor in this slot and join the group."""
        self.kafka.subscribe(self._on_assign, self._on_revoke, self._on_lost)
        log.info(
            "processor started: group %s, transactional id %s",
            group_id(self.settings),
            transactional_id(self.settings),
        )

    def run_once(self) -> None:
        """One step: poll a batch (rebalance callbacks run inside), apply it, fire
        what is due, commit it all in one transaction."""
        self._assigned_in_poll.clear()
        self._dropped_in_poll.clear()
        polled = self.kafka.poll(MAX_BATCH, self._poll_wait_s())
        reassigned = self._assigned_in_poll & self._dropped_in_poll
        messages, stale = drop_reassigned(polled, reassigned)
        if stale:
            self.kafka.rewind(stale)
        self._advance_restore()
        self._step(messages)
        if time.monotonic() - self._sizes_at > SIZES_EVERY_S:
            self._sizes_at = time.monotonic()
            for wheel in self.partitions.values():
                wheel.report_sizes()

    def close(self) -> None:
        try:
            self.kafka.close()  # leaves the group: the revoke callback drops every partition
        finally:
            for restore in self._restoring.values():
                restore.abandon()
            self._restoring.clear()
            for wheel in self.partitions.values():
                wheel.close(remove_store=False)
            log.info("processor stopped after %d transactions", self.committed_transactions)

    def _step(self, messages: Sequence[ConsumedMessage]) -> None:
        now_ms = self.clock.now_ms()
        outputs, self._pending = self._pending, []
        consumed = False
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise FatalKafkaError.of(error, "consume")
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
            ends = self._changelog_ends(now_ms)
            # With ends to record, the offsets go too: their commit checks this
            # member's generation, so nobody else owned those partitions meanwhile.
            checked = self._transact(outputs, consumed or bool(ends))
            if checked is None:
                # Aborted: the rewind's writes (what it fired) stay uncommitted in
                # the stores until the transaction that carries its outputs commits;
                # committed now, another abort would roll back to "already fired".
                return
            for number, end in ends.items():
                if number in checked and number in self.partitions:
                    self.partitions[number].store.save_offset(end, now_ms)
        for wheel in self.partitions.values():
            wheel.store.commit()

    def _changelog_ends(self, now_ms: int) -> dict[int, int]:
        """Every CHECKPOINT_EVERY_MS, each partition's changelog end before this
        step's transaction: once the transaction commits, the stores hold at least
        that much, and record it with the step (a restart then reads from there)."""
        if now_ms - self._checkpointed_ms < CHECKPOINT_EVERY_MS:
            return {}
        self._checkpointed_ms = now_ms
        return {p: self.kafka.changelog_watermarks(p)[1] for p in sorted(self.partitions)}

    def _poll_wait_s(self) -> float:
        if self._pending or self._restoring:
            return 0.0
        wakeups = [w for p in self.partitions.values() if (w := p.next_wakeup_ms()) is not None]
        if not wakeups:
            return MAX_POLL_WAIT_S
        until_timer_s = (min(wakeups) - self.clock.now_ms()) / 1000
        return min(MAX_POLL_WAIT_S, max(MIN_TIMER_WAIT_S, until_timer_s))

    # --- transactions ------------------------------------------------------------

    def _transact(self, outputs: list[Output], consumed: bool) -> set[int] | None:
        """Write and commit; the partitions whose offsets went with it (None: aborted)."""
        offsets = self.kafka.positions(sorted(self.partitions)) if consumed else {}
        try:
            self.kafka.transact([self._out_record(o) for o in outputs], offsets)
        except TransactionAborted as exc:
            log.warning("transaction aborted, rewinding: %s", exc)
            metrics.TRANSACTIONS.labels(result="aborted").inc()
            self._rewind()
            return None
        self.committed_transactions += 1
        metrics.TRANSACTIONS.labels(result="committed").inc()
        return set(offsets)

    def _out_record(self, output: Output) -> OutRecord:
        return OutRecord(
            self._topics[output.topic], output.key, output.value, output.headers, output.partition
        )

    def _rewind(self) -> None:
        """After an abort: roll each partition's store back to its last committed
        step (what the changelog holds), rebuild its wheel from it, seek to committed."""
        owned = sorted(self.partitions)
        self._pending = []
        for number in owned:
            store = self.partitions[number].store
            store.rollback()
            wheel = PartitionWheel(number, store, self.clock.now_ms(), self.config)
            wheel.restore([])
            self._pending.extend(wheel.start(self.clock.now_ms()))
            self.partitions[number] = wheel
        self.kafka.rewind(owned)

    # --- partitions come and go -----------------------------------------------

    def _on_assign(self, partitions: list[int]) -> None:
        numbers = sorted(partitions)
        self._assigned_in_poll.update(numbers)
        self._assigned_at_least_once = True
        now_ms = self.clock.now_ms()
        if not self.partitions and not self._restoring:
            # Nothing owned, so nothing to keep firing: restore them all at once, side
            # by side (a restore mostly waits on its changelog reader, and each has
            # its own store), so a restart takes the slowest partition's time.
            restores = [self._new_restore(number, now_ms) for number in numbers]
            with ThreadPoolExecutor(max(1, len(restores)), "restore") as pool:
                for _done in pool.map(lambda restore: restore.advance(None), restores):
                    pass
            for restore in restores:
                self._adopt(restore)
            log.info("assigned %s (restored; owns %s)", numbers, sorted(self.partitions))
            return
        # Read none of their commands before they are restored (see _advance_restore).
        self.kafka.pause_partitions(numbers)
        for number in numbers:
            self._restoring[number] = self._new_restore(number, now_ms)
        log.info(
            "assigned %s (restoring; owns %s, restoring %s)",
            numbers,
            sorted(self.partitions),
            sorted(self._restoring),
        )

    def _new_restore(self, number: int, now_ms: int) -> PartitionRestore:
        path = self._state_dir / f"{self._topics[STATE]}-{number}.sqlite3"
        return PartitionRestore(number, path, self.kafka, self._topics[STATE], now_ms)

    def _advance_restore(self) -> None:
        """One slice of the oldest restore under way; a finished one is adopted and
        its commands resumed (from the committed offset: none were read)."""
        if not self._restoring:
            return
        number, restore = next(iter(self._restoring.items()))
        if restore.advance(self.restore_slice_records):
            del self._restoring[number]
            self._adopt(restore)
            self.kafka.resume_partitions([number])
            log.info("resumed %s (owns %s)", number, sorted(self.partitions))

    def _adopt(self, restore: PartitionRestore) -> None:
        """A restored partition joins the loop; what fell due while nobody owned it
        fires (under each task's misfire policy) with the next transaction."""
        wheel = restore.finish(self.clock.now_ms(), self.config)
        self._pending.extend(wheel.start(self.clock.now_ms()))
        self.partitions[restore.number] = wheel
        wheel.report_sizes()

    def _on_revoke(self, partitions: list[int]) -> None:
        # No transaction is open here: callbacks run inside consume(), and the
        # loop commits before it consumes again.
        self._drop(partitions, "revoked")

    def _on_lost(self, partitions: list[int]) -> None:
        self._drop(partitions, "lost")

    def _drop(self, partitions: list[int], why: str) -> None:
        numbers = sorted(partitions)
        self._dropped_in_poll.update(numbers)
        for number in numbers:
            restoring = self._restoring.pop(number, None)
            if restoring is not None:
                # Nothing of it was consumed or written: drop what it restored so far,
                # and let a later assignment start unpaused.
                restoring.abandon()
                self.kafka.resume_partitions([number])
            wheel = self.partitions.pop(number, None)
            if wheel is None:
                continue
            if why == "revoked":
                # Every step of ours is committed, in Kafka and in the store, and
                # nobody else has written since: the store is the changelog up to
                # its end (the dev broker's high is short of it at worst: safe).
                # (A restore's firings not yet written are dropped: roll them back.)
                wheel.store.rollback()
                _, high = self.kafka.changelog_watermarks(number)
                wheel.store.save_offset(high, self.clock.now_ms())
                wheel.store.commit()
            wheel.close(remove_store=False)  # uncommitted writes are dropped
        # Outputs from a restore of a partition we no longer own must not be written.
        self._pending = [o for o in self._pending if o.partition not in numbers]
        log.info("%s %s (owns %s)", why, numbers, sorted(self.partitions))

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        broker_up = self.kafka.broker_connected()
        ready = self._assigned_at_least_once and broker_up and not self._stop.is_set()
        return ready, {"partitions": sorted(self.partitions), "broker": broker_up}
