"""The projector: tasks.state, tasks.results and tasks.commands -> the read model.

It also reads tasks.dead, for one thing only: a command the processors refused
ends the wait of the request that published it, with the reason.

It runs on a thread inside each API process and keeps its offsets in the read
model itself, written after the rows they produced (a redo is idempotent), so
a restart resumes exactly where the store is. Records are read read_committed.
Two shapes, by where the read model lives:

* **Private** (SQLite: each API process has its own file): assign() over every
  partition (no group: joins are slow on some brokers), project everything,
  hand each applied batch to ``on_batch`` (the API's live hub: WebSocket
  subscribers and ``?wait=true`` requests).
* **Shared** (Cassandra: one read model for every API instance): the writer is
  a consumer GROUP (``kronwheel-projectors``), so each record is written once
  whatever the number of instances; a partition moves with its offsets (stored
  under one projector name, and they never go back). The live hub still needs
  every partition's events, so a second, write-free consumer tails every
  partition from its end and feeds ``on_batch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, TopicPartition

from streams.config import Settings, consumer_config
from streams.core.errors import MalformedEvent
from streams.core.events import ExecutionResult, TaskCommand, TaskState
from streams.core.validation import Rules
from streams.kafka.clients import consume_batch
from streams.kafka.records import decode_command, decode_dead_letter, decode_result, decode_state
from streams.kafka.topics import COMMANDS, DEAD, RESULTS, STATE
from streams.metrics import PROJECTED_EVENTS
from streams.ports import KafkaMessage, Projection, ReadModel
from streams.views.readmodel.admit import (
    apply_each,
    check_command,
    check_result,
    check_state,
    skipped,
)

log = logging.getLogger(__name__)


class ConsumedRecord(KafkaMessage, Protocol):
    """A consumed record (confluent_kafka.Message fits; tests pass dataclasses)."""

    def error(self) -> object | None: ...


MAX_BATCH = 2_000
# Shared mode: how long a live event may wait for its row to be written, and how
# often the tail looks at the stored offsets meanwhile.
WRITTEN_WAIT_S = 5.0
WRITTEN_POLL_S = 0.02
POLL_TIMEOUT_S = 0.2
METADATA_RETRY_S = 1.0
# An idle consumer looks the same whether or not the broker is up: probe it.
BROKER_PROBE_S = 5.0


@dataclass
class ProjectorStatus:
    assigned: bool = False
    caught_up: bool = False  # drained what was there when it started
    broker_reachable: bool = False  # the last metadata probe answered
    last_poll_monotonic: float = 0.0
    applied_batches: int = 0
    error: str | None = None
    shared: bool = False
    partitions: int = 0  # owned now (shared mode: the group's share of this instance)


class Projector:
    def __init__(
        self,
        settings: Settings,
        store: ReadModel,
        on_batch: Callable[[Projection], None] = lambda _batch: None,
        shared: bool | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_batch = on_batch
        self.shared = bool(settings.cassandra_contact_points) if shared is None else shared
        # Shared offsets belong to the group's one projector, not to an instance.
        self.name = "projector" if self.shared else f"api-{settings.slot}"
        self.status = ProjectorStatus(shared=self.shared)
        self._topics = {name: settings.topic(name) for name in (STATE, RESULTS, COMMANDS, DEAD)}
        self._rules = Rules(topic_prefix=settings.topic_prefix)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, name="projector", daemon=True)]
        if self.shared:
            self._threads.append(
                threading.Thread(target=self._tail, name="projector-live", daemon=True)
            )

    def start(self) -> Projector:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _run(self) -> None:
        prefix = self.settings.topic_prefix
        group = (
            f"{prefix}kronwheel-projectors"
            if self.shared
            else f"{prefix}kronwheel-api-projector-{self.settings.slot}"
        )
        consumer = Consumer(consumer_config(self.settings, "projector", group))
        try:
            if self.shared:
                self._join(consumer)
            else:
                self._assign(consumer, self.store.offsets(self.name))
            probed = time.monotonic()
            while not self._stop.is_set():
                messages = consume_batch(consumer, MAX_BATCH, POLL_TIMEOUT_S)
                self.status.last_poll_monotonic = time.monotonic()
                if self.status.last_poll_monotonic - probed > BROKER_PROBE_S:
                    self._probe(consumer)
                    probed = self.status.last_poll_monotonic
                if not messages:
                    if not self.status.assigned:
                        continue  # a group member polls empty until it is given partitions
                    if not self.status.caught_up:
                        log.info("projector caught up")
                    self.status.caught_up = True
                    continue
                batch = self._project(messages)
                try:
                    self.store.apply(self.name, batch)
                except Exception:  # one record must not stop the read model of every tenant
                    log.exception("projector batch refused; applying it record by record")
                    apply_each(self.store, self.name, batch)
                self.status.applied_batches += 1
                PROJECTED_EVENTS.labels("state").inc(len(batch.states))
                PROJECTED_EVENTS.labels("results").inc(len(batch.results))
                PROJECTED_EVENTS.labels("commands").inc(len(batch.commands))
                if not self.shared:
                    self.on_batch(batch)
        except Exception as exc:  # reported by /readyz; the API process stays up for reads
            self.status.error = f"{type(exc).__name__}: {exc}"
            log.exception("projector stopped")
        finally:
            consumer.close()

    def _join(self, consumer: Consumer) -> None:
        """Shared mode: join the projectors' group; each partition it is given starts
        at the offset stored in the read model (whoever projected it before)."""
        if self._wait_for_topics(consumer) is None:
            return

        def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
            stored = self.store.offsets(self.name)
            for tp in partitions:
                tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
            c.incremental_assign(partitions)
            self.status.partitions += len(partitions)
            self.status.assigned = True
            log.info("projector group assigned %d partitions", len(partitions))

        def on_revoke(_c: Consumer, partitions: list[TopicPartition]) -> None:
            # Nothing to flush: each batch's offsets were stored with its rows.
            self.status.partitions -= len(partitions)

        consumer.subscribe(
            list(self._topics.values()),
            on_assign=on_assign,
            on_revoke=on_revoke,
            on_lost=on_revoke,
        )
        self.status.broker_reachable = True

    def _tail(self) -> None:
        """Shared mode: every partition's new events for this instance's live hub,
        without writing (the group's writer for that partition writes)."""
        consumer = Consumer(
            consumer_config(
                self.settings,
                "projector-live",
                f"{self.settings.topic_prefix}kronwheel-api-live-{self.settings.slot}",
            )
        )
        try:
            self._assign(consumer, {}, start=OFFSET_END, live_only=True)
            while not self._stop.is_set():
                messages = consume_batch(consumer, MAX_BATCH, POLL_TIMEOUT_S)
                if messages:
                    batch = self._project(messages)
                    self._await_written(batch)
                    self.on_batch(batch)
        except Exception:
            log.exception("projector live tail stopped")
        finally:
            consumer.close()

    def _await_written(self, batch: Projection) -> None:
        """Hold a live batch until the group's writers have stored it (their offsets
        cover it), so a ``?wait=true`` answered from it reads its own write. Bounded:
        a writer that is down or rebalancing delays live events, never stops them."""
        deadline = time.monotonic() + WRITTEN_WAIT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            stored = self.store.offsets(self.name)
            if all(stored.get((t, p), -1) >= o for t, p, o in batch.offsets):
                return
            time.sleep(WRITTEN_POLL_S)

    def _probe(self, consumer: Consumer) -> None:
        try:
            consumer.list_topics(self._topics[STATE], timeout=2)
            self.status.broker_reachable = True
        except KafkaException:
            self.status.broker_reachable = False

    def _wait_for_topics(self, consumer: Consumer) -> dict[str, Any] | None:
        while not self._stop.is_set():
            try:
                metadata = consumer.list_topics(timeout=10).topics
            except KafkaException as exc:
                self.status.error = f"broker unreachable: {exc}"
                time.sleep(METADATA_RETRY_S)
                continue
            missing = [t for t in self._topics.values() if t not in metadata]
            if not missing:
                break
            self.status.error = f"waiting for topics {', '.join(missing)}"
            time.sleep(METADATA_RETRY_S)
        else:
            return None
        self.status.error = None
        return dict(metadata)

    def _assign(
        self,
        consumer: Consumer,
        stored: dict[tuple[str, int], int],
        start: int = OFFSET_BEGINNING,
        live_only: bool = False,
    ) -> None:
        metadata = self._wait_for_topics(consumer)
        if metadata is None:
            return
        assignment = [
            TopicPartition(topic, partition, stored.get((topic, partition), start))
            for topic in self._topics.values()
            for partition in metadata[topic].partitions
        ]
        consumer.assign(assignment)
        if live_only:
            return  # the status is the writer's
        self.status.partitions = len(assignment)
        self.status.assigned = True
        self.status.broker_reachable = True
        self.status.error = None
        log.info("projector assigned %d partitions (resuming from stored offsets)", len(assignment))

    def _rejection(self, value: bytes) -> list[tuple[str, str, str]]:
        """(task id, command id, reason) of a dead-lettered command, if it is one."""
        dead = decode_dead_letter(value)
        if dead.source_topic != self._topics[COMMANDS] or dead.original_value is None:
            return []
        command = decode_command(dead.original_value, rules=None)  # refused: show why
        return [(command.task_id, command.command_id, dead.reason)]

    def _project(self, messages: Sequence[ConsumedRecord]) -> Projection:
        states: list[tuple[str, TaskState | None]] = []
        results: list[ExecutionResult] = []
        commands: list[TaskCommand] = []
        rejected: list[tuple[str, str, str]] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            if message.error() is not None:
                log.warning("projector consume error: %s", message.error())
                continue
            topic = message.topic() or ""
            partition = message.partition() or 0
            offsets[(topic, partition)] = (message.offset() or 0) + 1
            value = message.value()
            key = (message.key() or b"").decode("utf-8", "replace")
            try:
                if topic == self._topics[STATE]:
                    state = None if value is None else decode_state(value)
                    if state is not None:
                        check_state(state)
                    states.append((key, state))
                elif value is None:
                    continue
                elif topic == self._topics[RESULTS]:
                    result = decode_result(value)
                    check_result(result)
                    results.append(result)
                elif topic == self._topics[COMMANDS]:
                    command = decode_command(value, self._rules)
                    check_command(command)
                    commands.append(command)
                else:
                    rejected.extend(self._rejection(value))
            except MalformedEvent as exc:
                # The processors dead-letter malformed commands; the read model skips them.
                log.info("projector skipped %s[%d]@%s: %s", topic, partition, message.offset(), exc)
            except Exception as exc:  # anything else it cannot project: count, skip, go on
                skipped(f"{topic}[{partition}]@{message.offset()}", exc)
        return Projection(
            states=tuple(states),
            results=tuple(results),
            commands=tuple(commands),
            rejected=tuple(rejected),
            offsets=tuple((t, p, o) for (t, p), o in offsets.items()),
        )
