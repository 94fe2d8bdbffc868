"""The dispatcher loop: tasks.due -> run the target -> history store -> tasks.results.

Per due event, in this order (docs/dispatch.md has the whole story):

1. A fire id with a recorded outcome is never run again. Recorded at this very
   record (partition@offset): a crash came between the history write and the
   commit, so the recorded outcome and its follow-ups are emitted again. At
   another record: a duplicate on tasks.due, skipped and counted.
2. Otherwise it waits for a place in flight, handed out round robin over
   tenants and then partitions (streams.dispatching.admission), and the
   target runs (concurrently with others, bounded).
3. The outcome goes to the history store (idempotent by fire id, the first
   outcome stays), then its outputs (ExecutionResult, a RETRY command or a dead
   letter) wait until every earlier record of the partition is done too.
4. The released outputs and the offsets after them commit in one Kafka
   transaction (streams.dispatching.kafka_side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from streams.config import Settings
from streams.core.attempts import result_of
from streams.core.clock import Clock, SystemClock
from streams.dispatching.admission import Admission, partitions_to_pause
from streams.dispatching.boundary import run_guarded
from streams.dispatching.dedupe import Verdict
from streams.dispatching.kafka_side import ConfluentDispatcherKafka, group_id
from streams.dispatching.outbound import open_targets
from streams.dispatching.outputs import (
    Finished,
    PartitionState,
    Taken,
    contended,
    log_attempt,
    outputs_of,
    release,
    skip_duplicate,
    summarize_and_prune,
    take,
)
from streams.dispatching.ownership import Ownership
from streams.kafka.transactions import TransactionAborted
from streams.metrics import (
    CALLBACK_LATENESS,
    DISPATCH_DURATION,
    DISPATCH_OUTCOMES,
    DISPATCH_QUEUE_WAIT,
)
from streams.ops.server import start_ops_server
from streams.ports import (
    ConsumedMessage,
    DispatcherKafka,
    DueSource,
    ExecutionHistory,
    FiringRunner,
    OutcomeNotifier,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH = 500
IDLE_POLL_S = 0.1
BUSY_POLL_S = 0.02
PRUNE_EVERY_S = 60.0  # also the interval of the per-partition INFO summary
# Records read ahead of the slowest unfinished one, over all partitions, before
# the dispatcher stops fetching (each partition pauses at its share of this):
# bounds memory when one target is slow.
READ_AHEAD_FACTOR = 4
STOP_GRACE_S = 10.0


class Dispatcher:
    """The loop. ``kafka`` (consume, transactions, assignment callbacks), ``runner``
    and ``notifier`` are seams: by default the real ones are built from the settings."""

    def __init__(
        self,
        settings: Settings,
        store: ExecutionHistory,
        clock: Clock | None = None,
        kafka: DispatcherKafka | None = None,
        runner: FiringRunner | None = None,
        notifier: OutcomeNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self.kafka: DispatcherKafka = kafka or ConfluentDispatcherKafka(settings)
        self._given_targets = (runner, notifier)
        # The Kafka side is used from this one thread only: polls (and the rebalance
        # callbacks they run), transactions and seeks never overlap.
        self._kafka_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dispatch-kafka")
        # The loop thread and the Kafka thread (rebalance callbacks) share the
        # partition states; every change to them holds the ownership's lock.
        self.ownership = Ownership(store, self.clock, self.kafka)
        self.partitions = self.ownership.partitions
        self._lock = self.ownership.lock
        self._finished: list[Finished] = []
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Fetched firings wait here to start, round robin over tenants and partitions.
        self._admission: Admission[Taken] = Admission(settings.dispatch_concurrency)
        self._paused: set[int] = set()
        self._pruned_at = 0.0
        self._started = False
        self.dispatched = 0

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, dict[str, object]]:
        polled_ago = round(time.monotonic() - self.kafka.last_poll_monotonic(), 1)
        broker_up = self.kafka.broker_connected()
        ready = self._started and polled_ago < 10.0 and broker_up
        with self._lock:  # asked from the ops server's thread
            partitions = sorted(self.partitions)
        return ready, {"partitions": partitions, "polled_s_ago": polled_ago, "broker": broker_up}

    async def _on_kafka(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._kafka_thread, fn, *args)

    async def run(self) -> None:
        ops = start_ops_server(
            self.settings.metrics_host, self.settings.metrics_port, self.readiness, "dispatcher"
        )
        try:
            async with self._targets() as (runner, notifier):
                await self.start()
                while not self._stop.is_set():
                    await self.cycle(runner, notifier)
                await self._drain(notifier)
                await notifier.close()
        finally:
            await self.close()
            if ops is not None:
                ops.stop()
            log.info("dispatcher stopped after %d attempts", self.dispatched)

    @contextlib.asynccontextmanager
    async def _targets(self) -> AsyncIterator[tuple[FiringRunner, OutcomeNotifier]]:
        runner, notifier = self._given_targets
        if runner is not None and notifier is not None:
            yield runner, notifier
            return
        async with open_targets(self.settings, self.clock) as (real_runner, real_notifier):
            yield runner or real_runner, notifier or real_notifier

    async def start(self) -> None:
        """Fence a predecessor in this slot and join the group."""
        await self._on_kafka(
            self.kafka.subscribe,
            self.ownership.on_assign,
            self.ownership.on_revoke,
            self.ownership.on_lost,
        )
        self._started = True
        log.info("dispatcher started, group %s", group_id(self.settings))

    async def cycle(self, runner: FiringRunner, notifier: OutcomeNotifier) -> None:
        """Poll, start what is new, record what finished, commit what is released."""
        try:
            await self._cycle(runner, notifier)
        except BaseException:
            # A fatal Kafka error (fenced, ...) or a store failure: leave without
            # committing anything more; the restarted process redoes from the
            # committed offsets.
            self.ownership.failed = True
            raise

    async def close(self) -> None:
        """Leave the group (the revoke callback commits what is done, unless failed)."""
        try:
            await self._on_kafka(self.kafka.close)
        finally:
            self._kafka_thread.shutdown(wait=True)

    async def _cycle(self, runner: FiringRunner, notifier: OutcomeNotifier) -> None:
        busy = bool(self._tasks) or bool(self._finished)
        self.ownership.poll_starts()
        polled = await self._on_kafka(
            self.kafka.poll, MAX_BATCH, BUSY_POLL_S if busy else IDLE_POLL_S
        )
        messages, stale = self.ownership.split_polled(polled)
        if stale:
            await self._on_kafka(self.kafka.rewind, stale)
        if messages:
            await self._accept(messages, runner, notifier)
        await self._record_finished(notifier)
        await self._commit_released()
        await self._apply_backpressure()
        self._prune()

    # --- taking due events ----------------------------------------------------

    async def _accept(
        self, messages: Sequence[ConsumedMessage], runner: FiringRunner, notifier: OutcomeNotifier
    ) -> None:
        to_run: list[Taken] = []
        to_look_up: list[Taken] = []
        with self._lock:
            for message in messages:
                if message.error() is not None:
                    log.warning("consume error: %s", message.error())
                    continue
                taken = self._take(message)
                if taken is None:
                    continue
                verdict = taken.state.recent.check(taken.due.fire_id, taken.due.scheduled_at_ms)
                if taken.due.fire_id in taken.state.running:
                    skip_duplicate(taken, "it is running now")
                elif verdict is Verdict.FRESH:
                    taken.state.running.add(taken.due.fire_id)
                    to_run.append(taken)
                elif verdict is Verdict.RECORDED and taken.state.recent.recorded_offset(
                    taken.due.fire_id
                ) not in (None, taken.record.offset):
                    skip_duplicate(taken, "recorded from another record")
                else:
                    to_look_up.append(taken)
        if to_look_up:
            to_run.extend(await self._settle_from_store(to_look_up, notifier))
        for taken in to_run:
            self._admission.add(taken.due.tenant, taken.record.partition, taken)
        self._admit(runner)

    def _admit(self, runner: FiringRunner) -> None:
        """Start waiting firings while the in-flight set has room (admission.py)."""
        while not self._stop.is_set():
            picked = self._admission.next()
            if picked is None:
                return
            tenant, taken = picked
            with self._lock:
                current = self.partitions.get(taken.record.partition) is taken.state
            if not current:  # revoked, lost or rewound while it waited: not ours to run
                self._admission.done(tenant)
                continue
            task = asyncio.create_task(self._run_one(tenant, taken, runner))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self, message: ConsumedMessage) -> Taken | None:
        state = self.partitions.get(message.partition() or 0)
        if state is None:  # not ours any more (revoked during this poll)
            return None
        return take(self.settings, state, message, self.clock.now_ms())

    async def _settle_from_store(
        self, takens: list[Taken], notifier: OutcomeNotifier
    ) -> list[Taken]:
        """Ask the store about these; returns the ones that were never recorded."""
        recorded = await asyncio.to_thread(self.store.recorded, [t.due.fire_id for t in takens])
        fresh: list[Taken] = []
        with self._lock:
            for taken in takens:
                if self.partitions.get(taken.record.partition) is not taken.state:
                    continue
                found = recorded.get(taken.due.fire_id)
                if found is None:
                    if taken.due.fire_id in taken.state.running:
                        skip_duplicate(taken, "it is running now")
                    else:
                        taken.state.running.add(taken.due.fire_id)
                        fresh.append(taken)
                elif found.source == DueSource(taken.record.partition, taken.record.offset):
                    # This very record was handled before a crash (or an aborted
                    # commit): emit what was recorded, never call the target again.
                    DISPATCH_OUTCOMES.labels(outcome="reemitted").inc()
                    log.info(
                        "re-emitting recorded outcome of %s task=%s %s[%d]@%d",
                        taken.due.fire_id,
                        taken.due.task_id,
                        taken.record.topic,
                        taken.record.partition,
                        taken.record.offset,
                    )
                    taken.state.progress.finish(
                        taken.record.offset, outputs_of(self.settings, taken, found.result)
                    )
                    notifier.notify(taken.due, found.result)
                else:
                    skip_duplicate(taken, "recorded from another record")
        return fresh

    # --- running and recording ------------------------------------------------------

    async def _run_one(self, tenant: str, taken: Taken, runner: FiringRunner) -> None:
        try:
            attempt = await run_guarded(runner, taken.due, self.clock)  # and fairness.py
        finally:
            self._admission.done(tenant)
        result = result_of(taken.due, attempt, self.settings.instance_id)
        DISPATCH_QUEUE_WAIT.observe(max(0, attempt.started_at_ms - taken.fetched_at_ms) / 1000)
        DISPATCH_DURATION.observe((attempt.finished_at_ms - attempt.started_at_ms) / 1000)
        CALLBACK_LATENESS.observe(max(0, result.lateness_ms) / 1000)
        self._finished.append(Finished(taken, result))
        self._admit(runner)  # its place goes to the next in turn, without waiting for a poll

    async def _record_finished(self, notifier: OutcomeNotifier) -> None:
        if not self._finished:
            return
        batch, self._finished = self._finished, []
        results = [f.result for f in batch]
        sources = {
            f.result.fire_id: DueSource(f.taken.record.partition, f.taken.record.offset)
            for f in batch
        }
        raced = contended(batch, self.clock.now_ms())
        inserted = await asyncio.to_thread(self.store.record_executions, results, sources, raced)
        winners = {r.fire_id: r for r in results}
        if inserted < len(batch):
            # Another dispatcher recorded some of these first (a moved partition):
            # what the store holds is the outcome, so that is what gets emitted.
            stored = await asyncio.to_thread(self.store.recorded, list(winners))
            winners.update({fire: rec.result for fire, rec in stored.items()})
        with self._lock:
            for finished in batch:
                taken = finished.taken
                result = winners[finished.result.fire_id]
                taken.state.running.discard(taken.due.fire_id)
                if self.partitions.get(taken.record.partition) is not taken.state:
                    continue  # revoked, lost or rewound: the next owner re-emits it
                taken.state.recent.add(
                    taken.due.fire_id, taken.due.scheduled_at_ms, taken.record.offset
                )
                outputs = outputs_of(self.settings, taken, result)
                taken.state.progress.finish(taken.record.offset, outputs)
                log_attempt(self.settings, taken, result, outputs)
                notifier.notify(taken.due, result)
        self.dispatched += len(batch)

    # --- committing -------------------------------------------------------------------

    async def _commit_released(self) -> None:
        with self._lock:
            outputs, offsets = release(self.partitions)
        if not offsets:
            return
        try:
            await self._on_kafka(self.kafka.transact, outputs, offsets)
        except TransactionAborted:
            await self._on_kafka(self._rewind)

    def _rewind(self) -> None:
        """After an aborted commit: forget unfinished work, read again from the committed
        offsets; what was recorded meanwhile is re-emitted from the store."""
        with self._lock:
            for partition, state in list(self.partitions.items()):
                self.partitions[partition] = PartitionState(recent=state.recent)
            owned = sorted(self.partitions)
        self.kafka.rewind(owned)

    async def _apply_backpressure(self) -> None:
        with self._lock:
            held = {p: state.progress.held for p, state in self.partitions.items()}
        read_ahead = READ_AHEAD_FACTOR * self.settings.dispatch_concurrency
        paused = partitions_to_pause(held, self._paused, read_ahead)
        # Pausing every cycle while any is over also pauses one assigned meanwhile.
        if paused or self._paused:
            await self._on_kafka(self.kafka.pause, sorted(paused))
        self._paused = paused

    def _prune(self) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        with self._lock:
            summarize_and_prune(self.partitions, self.clock.now_ms(), now)

    async def _drain(self, notifier: OutcomeNotifier) -> None:
        """On stop: let running targets finish (bounded), record and commit them."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_S)
        await self._record_finished(notifier)
        await self._commit_released()
