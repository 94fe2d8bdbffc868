"""The events that flow between roles, as plain values (the codec maps them to Avro)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streams.core.model import NotifyPolicy, Outcome, RetryPolicy, Target, TaskSpec


class CommandKind(StrEnum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    CANCEL = "CANCEL"
    TRIGGER = "TRIGGER"
    RETRY = "RETRY"


class TaskStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class RetryRequest:
    scheduled_at_ms: int
    attempt: int
    run_at_ms: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class TaskCommand:
    command_id: str
    task_id: str
    tenant: str
    kind: CommandKind
    issued_at_ms: int
    issuer: str
    spec: TaskSpec | None = None
    retry: RetryRequest | None = None


@dataclass(frozen=True, slots=True)
class TaskState:
    task_id: str
    tenant: str
    spec: TaskSpec
    status: TaskStatus
    next_fire_ms: int | None
    last_fire_ms: int | None
    fire_count: int
    created_at_ms: int
    updated_at_ms: int
    last_command_id: str = ""
    pending_retries: tuple[RetryRequest, ...] = ()
    recent_command_ids: tuple[str, ...] = ()


class FireReason(StrEnum):
    SCHEDULE = "schedule"
    TRIGGER = "trigger"
    RETRY = "retry"
    MISFIRE = "misfire"


@dataclass(frozen=True, slots=True)
class DueTask:
    fire_id: str
    task_id: str
    tenant: str
    name: str
    scheduled_at_ms: int
    attempt: int
    emitted_at_ms: int
    target: Target
    retry: RetryPolicy
    notify: NotifyPolicy | None = None
    reason: FireReason = FireReason.SCHEDULE
    # The run was due this long after its nominal scheduled_at_ms (schedule.jitter_ms).
    jitter_ms: int = 0

    @property
    def due_at_ms(self) -> int:
        """When the run was due: lateness is measured from here."""
        return self.scheduled_at_ms + self.jitter_ms


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    fire_id: str
    task_id: str
    tenant: str
    scheduled_at_ms: int
    attempt: int
    outcome: Outcome
    final: bool
    started_at_ms: int
    finished_at_ms: int
    lateness_ms: int
    http_status: int | None = None
    error: str | None = None
    dispatcher: str = ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    error_class: str
    source_topic: str
    source_partition: int
    source_offset: int
    original_key: bytes | None
    original_value: bytes | None
    task_id: str | None
    dead_at_ms: int
