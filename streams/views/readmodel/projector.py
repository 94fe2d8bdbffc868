"""The projector: tasks.state, tasks.results and tasks.commands -> the read model.

It also reads tasks.dead, for one thing only: a command the processors refused
ends the wait of the request that published it, with the reason.

It runs on a thread inside each API process. It uses assign() over every
partition (no group: joins are slow on some brokers, and each API instance
needs every partition anyway) and keeps its offsets in the read model itself,
written in the same transaction as the rows they produced, so a restart
resumes exactly where the store is. Records are read read_committed.

After each applied batch it hands the batch to ``on_batch`` (the API's live
hub: WebSocket subscribers and ``?wait=true`` requests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

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


class Projector:
    def __init__(
        self,
        settings: Settings,
        store: ReadModel,
        on_batch: Callable[[Projection], None] = lambda _batch: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_batch = on_batch
        self.name = f"api-{settings.slot}"
        self.status = ProjectorStatus()
        self._topics = {name: settings.topic(name) for name in (STATE, RESULTS, COMMANDS, DEAD)}
        self._rules = Rules(topic_prefix=settings.topic_prefix)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projector", daemon=True)

    def start(self) -> Projector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        consumer = Consumer(
            consumer_config(
                self.settings,
                "projector",
                f"{self.settings.topic_prefix}kronwheel-api-projector-{self.settings.slot}",
            )
        )
        try:
            self._assign(consumer)
            probed = time.monotonic()
            while not self._stop.is_set():
                messages = consume_batch(consumer, MAX_BATCH, POLL_TIMEOUT_S)
                self.status.last_poll_monotonic = time.monotonic()
                if self.status.last_poll_monotonic - probed > BROKER_PROBE_S:
                    self._probe(consumer)
                    probed = self.status.last_poll_monotonic
                if not messages:
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
                self.on_batch(batch)
        except Exception as exc:  # reported by /readyz; the API process stays up for reads
            self.status.error = f"{type(exc).__name__}: {exc}"
            log.exception("projector stopped")
        finally:
            consumer.close()

    def _probe(self, consumer: Consumer) -> None:
        try:
            consumer.list_topics(self._topics[STATE], timeout=2)
            self.status.broker_reachable = True
        except KafkaException:
            self.status.broker_reachable = False

    def _assign(self, consumer: Consumer) -> None:
        stored = self.store.offsets(self.name)
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
            return
        assignment = [
            TopicPartition(topic, partition, stored.get((topic, partition), OFFSET_BEGINNING))
            for topic in self._topics.values()
            for partition in metadata[topic].partitions
        ]
        consumer.assign(assignment)
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
