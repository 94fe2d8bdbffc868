"""The interfaces between the core and its adapters, in one module.

Adapters (SQLite, Cassandra, Kafka) import these; nothing here imports an
adapter. Unit tests pass plain objects that satisfy the protocols.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.core.events import ExecutionResult


@dataclass(frozen=True, slots=True)
class TaskRow:
    """The read model of one task, as the API shows it."""

    task_id: str
    tenant: str
    name: str
    spec: dict[str, Any]  # the REST representation of the TaskSpec
    status: str
    next_fire_ms: int | None
    created_at_ms: int
    updated_at_ms: int
    last_fire_id: str | None = None
    last_outcome: str | None = None
    last_finished_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DueSource:
    """Where the due event of a recorded attempt was read: tasks.due partition@offset.

    A dispatcher that meets a recorded fire id again tells a re-delivery of the
    same record (re-emit its outputs) from a duplicate record (skip) by it.
    """

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class RecordedExecution:
    result: ExecutionResult
    source: DueSource | None  # None when recorded without one (a rebuild from tasks.results)


class ExecutionHistory(Protocol):
    """The outcome of every attempt, keyed by fire id (SQLite embedded, Cassandra in production).

    One contract suite (tests/contract/) runs over every implementation.
    """

    def record_executions(
        self,
        results: Sequence[ExecutionResult],
        sources: Mapping[str, DueSource] | None = None,
    ) -> int:
        """Store outcomes, idempotent by fire id: the first outcome recorded for a fire
        id stays. ``sources`` maps fire id -> its due record. Returns how many were new."""
        ...

    def executions(self, task_id: str, limit: int = 100) -> list[ExecutionResult]:
        """One task's attempts, newest first (scheduled time, then attempt)."""
        ...

    def executions_between(
        self, start_ms: int, end_ms: int, limit: int = 10_000
    ) -> list[ExecutionResult]:
        """Attempts scheduled in [start_ms, end_ms), oldest first (for operators' replays)."""
        ...

    def recorded(self, fire_ids: Sequence[str]) -> dict[str, RecordedExecution]:
        """The recorded outcome of each of these fire ids that has one."""
        ...

    def recent_fire_ids(self, partition: int, since_ms: int) -> dict[str, tuple[int, int | None]]:
        """Fire ids recorded from one tasks.due partition and scheduled at or after
        ``since_ms``: fire id -> (scheduled_at_ms, due offset). Loaded on assignment."""
        ...

    def close(self) -> None: ...


class HistoryStore(ExecutionHistory, Protocol):
    """Execution history plus the task read model the API shows (SQLite today)."""

    def upsert_task(self, row: TaskRow) -> None: ...

    def get_task(self, task_id: str) -> TaskRow | None: ...


class KafkaMessage(Protocol):
    """What the processors need of a consumed record (confluent_kafka.Message fits).

    Tests pass plain dataclasses, since confluent_kafka.Message cannot be built
    in Python.
    """

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...
