"""The interfaces between the core and its adapters, in one module.

Adapters (SQLite, Cassandra, Kafka) import these; nothing here imports an
adapter. Unit tests pass plain objects that satisfy the protocols.
"""

from __future__ import annotations

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


class HistoryStore(Protocol):
    """Execution history and the task read model (SQLite embedded, Cassandra in production)."""

    def upsert_task(self, row: TaskRow) -> None: ...

    def get_task(self, task_id: str) -> TaskRow | None: ...

    def record_executions(self, results: list[ExecutionResult]) -> int:
        """Store outcomes in one batch, idempotent by fire id; returns how many were new."""
        ...

    def executions(self, task_id: str, limit: int = 100) -> list[ExecutionResult]:
        """Newest first."""
        ...

    def final_fire_ids(self, fire_ids: list[str]) -> set[str]:
        """Which of these fire ids already have a final outcome (never run those again)."""
        ...

    def close(self) -> None: ...


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
