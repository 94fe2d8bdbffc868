"""The dispatcher role: tasks.due -> run the target -> history store + tasks.results.

At-least-once with effectively-once records: a batch of firings is run, its
outcomes are written to tasks.results and then to the history store
(idempotent by fire id), and only then are the batch's offsets stored for
commit. A firing whose fire id already has a final outcome is not run again,
so a duplicate on tasks.due (a replay, a broker without abort semantics) is
dropped.

Walking-skeleton scope: one attempt per firing (retries through the wheel,
per-host limits, notifications and the Cassandra store come with the
dispatcher issue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterable

import aiohttp
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from streams.config import Settings, consumer_config, producer_config
from streams.core.clock import Clock, SystemClock
from streams.core.errors import MalformedEvent
from streams.core.events import DueTask, ExecutionResult
from streams.core.netguard import Allowlist
from streams.history import open_history_store
from streams.kafka_io import AsyncProducer, consume_batch
from streams.ports import HistoryStore
from streams.records import dead_letter_for, decode_due, encode_dead_letter, encode_result
from streams.targets import TargetRunner
from streams.topics import DEAD, DUE, RESULTS

log = logging.getLogger(__name__)

MAX_BATCH = 500
POLL_TIMEOUT_S = 0.1


def group_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}kronwheel-dispatchers"


class Dispatcher:
    def __init__(self, settings: Settings, store: HistoryStore, clock: Clock | None = None) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock or SystemClock()
        self._consumer = Consumer(
            consumer_config(
                settings,
                "dispatcher",
                group_id(settings),
                **{
                    "enable.auto.offset.store": False,
                    "enable.auto.commit": True,
                    "auto.commit.interval.ms": 1000,
                },
            )
        )
        self._stop = asyncio.Event()
        self.dispatched = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        producer = AsyncProducer(producer_config(self.settings, "dispatcher"))
        connector = aiohttp.TCPConnector(limit=self.settings.dispatch_concurrency)
        semaphore = asyncio.Semaphore(self.settings.dispatch_concurrency)
        self._consumer.subscribe(
            [self.settings.topic(DUE)],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info("dispatcher started, group %s", group_id(self.settings))
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                runner = TargetRunner(
                    session,
                    producer,
                    self.clock,
                    Allowlist.parse(self.settings.target_allowlist),
                    self.settings.signing_secret,
                )
                while not self._stop.is_set():
                    messages = await asyncio.to_thread(
                        consume_batch, self._consumer, MAX_BATCH, POLL_TIMEOUT_S
                    )
                    if messages:
                        await self._dispatch_batch(messages, runner, producer, semaphore)
        finally:
            producer.close()
            await asyncio.to_thread(self._consumer.close)
            log.info("dispatcher stopped after %d firings", self.dispatched)

    async def _dispatch_batch(
        self,
        messages: list[Message],
        runner: TargetRunner,
        producer: AsyncProducer,
        semaphore: asyncio.Semaphore,
    ) -> None:
        firings: list[DueTask] = []
        deliveries = []
        for message in messages:
            if message.error() is not None:
                log.warning("consume error: %s", message.error())
                continue
            try:
                firings.append(decode_due(message.value() or b""))
            except MalformedEvent as exc:
                deliveries.append(self._dead_letter(producer, message, str(exc)))
        already_final = await asyncio.to_thread(
            self.store.final_fire_ids, [f.fire_id for f in firings]
        )
        # The same fire id twice in one batch is also a duplicate.
        fresh: dict[str, DueTask] = {
            f.fire_id: f for f in firings if f.fire_id not in already_final
        }
        for skipped in set(f.fire_id for f in firings) - set(fresh):
            log.info("skipped %s: already has a final outcome", skipped)

        async def run_one(due: DueTask) -> ExecutionResult:
            async with semaphore:
                attempt = await runner.run(due)
            result = ExecutionResult(
                fire_id=due.fire_id,
                task_id=due.task_id,
                tenant=due.tenant,
                scheduled_at_ms=due.scheduled_at_ms,
                attempt=due.attempt,
                outcome=attempt.outcome,
                final=True,
                started_at_ms=attempt.started_at_ms,
                finished_at_ms=attempt.finished_at_ms,
                lateness_ms=attempt.started_at_ms - due.scheduled_at_ms,
                http_status=attempt.http_status,
                error=attempt.error,
                dispatcher=self.settings.instance_id,
            )
            log.info(
                "fired %s task=%s outcome=%s lateness=%dms took=%dms%s",
                due.fire_id,
                due.task_id,
                result.outcome.value,
                result.lateness_ms,
                result.finished_at_ms - result.started_at_ms,
                f" error={result.error}" if result.error else "",
            )
            return result

        results = list(await asyncio.gather(*(run_one(d) for d in fresh.values())))
        results_topic = self.settings.topic(RESULTS)
        deliveries.extend(
            producer.produce(results_topic, encode_result(r), key=r.task_id.encode())
            for r in results
        )
        # tasks.results before the history store: the history store is what marks a
        # fire id final (and makes a redo skip it), so a crash between the two can
        # repeat a result event but never lose one.
        await asyncio.gather(*deliveries)
        if results:
            await asyncio.to_thread(self.store.record_executions, results)
        self.dispatched += len(results)
        # Only now is every outcome durable: mark the batch consumed.
        for message in messages:
            if message.error() is None:
                self._consumer.store_offsets(message)

    def _dead_letter(
        self, producer: AsyncProducer, message: Message, reason: str
    ) -> asyncio.Future[Message]:
        log.warning(
            "dead letter %s[%s]@%s: %s",
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )
        dead = dead_letter_for(message, reason, self.clock.now_ms())
        return producer.produce(
            self.settings.topic(DEAD), encode_dead_letter(dead), key=message.key()
        )

    def _on_assign(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        log.info("assigned %s", sorted(tp.partition for tp in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        # Outcomes of finished batches are stored offsets: commit them before the
        # partitions move, so the next owner does not redo (and re-call) them.
        with contextlib.suppress(KafkaException):
            consumer.commit(asynchronous=False)
        log.info("revoked %s", sorted(tp.partition for tp in partitions))

    def _on_lost(self, _consumer: Consumer, partitions: Iterable[TopicPartition]) -> None:
        log.warning(
            "lost %s (another dispatcher may redo them; the history store dedupes)",
            sorted(tp.partition for tp in partitions),
        )


def run_dispatcher(settings: Settings) -> None:
    async def main() -> None:
        store = open_history_store(settings)
        dispatcher = Dispatcher(settings, store)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, dispatcher.stop)
        try:
            await dispatcher.run()
        finally:
            store.close()

    asyncio.run(main())
