"""Map the core's event values to and from their Avro records (schemas/*.avsc).

Decoding validates meaning as well as shape: a record that is valid Avro but
says something impossible (an unknown time zone, an invalid cron) raises
MalformedEvent, so it ends in tasks.dead instead of inside a processor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from streams.core.errors import MalformedEvent, ValidationError
from streams.core.events import (
    CommandKind,
    DeadLetter,
    DueTask,
    ExecutionResult,
    FireReason,
    RetryRequest,
    TaskCommand,
    TaskState,
    TaskStatus,
)
from streams.core.ids import is_valid_task_id
from streams.core.model import (
    Outcome,
)
from streams.core.validation import DEFAULT_RULES, Rules, validate_command, validate_due
from streams.kafka.codec import codec
from streams.kafka.spec_avro import (
    NS,
    notify_from_avro,
    notify_to_avro,
    retry_from_avro,
    retry_to_avro,
    spec_from_avro,
    spec_to_avro,
    target_from_avro,
    target_to_avro,
)
from streams.ports import KafkaMessage

T = TypeVar("T")

# --- topic values ---------------------------------------------------------------


def encode_command(command: TaskCommand) -> bytes:
    retry = command.retry
    return codec("TaskCommand").encode(
        {
            "command_id": command.command_id,
            "task_id": command.task_id,
            "tenant": command.tenant,
            "kind": command.kind.value,
            "issued_at_ms": command.issued_at_ms,
            "issuer": command.issuer,
            # A record in a union goes as (name, fields): given a bare dict, fastavro
            # validates it against each branch to choose one, which took 40 % of
            # encoding a create command.
            "spec": (NS + "TaskSpec", spec_to_avro(command.spec)) if command.spec else None,
            "retry": None if retry is None else (NS + "RetryRequest", retry_request_to_avro(retry)),
            "jitter_ms": command.spec.jitter_ms if command.spec else 0,
        }
    )


def retry_request_to_avro(retry: RetryRequest) -> dict[str, Any]:
    return {
        "scheduled_at_ms": retry.scheduled_at_ms,
        "attempt": retry.attempt,
        "run_at_ms": retry.run_at_ms,
        "reason": retry.reason,
    }


def retry_request_from_avro(record: dict[str, Any]) -> RetryRequest:
    return RetryRequest(
        record["scheduled_at_ms"], record["attempt"], record["run_at_ms"], record["reason"]
    )


def _checked(validate: Callable[[T, Rules], None], value: T, rules: Rules) -> None:
    """Run a validation on a decoded record; a failure makes the record malformed."""
    try:
        validate(value, rules)
    except ValidationError as exc:
        raise MalformedEvent(f"{exc.code}: {exc.field} {exc.message}") from None


def decode_command(data: bytes, rules: Rules | None = DEFAULT_RULES) -> TaskCommand:
    """Decode and validate (streams.core.validation) a command; ``rules=None`` only decodes,
    for readers of commands that were already validated (the projector's dead letters)."""
    command = _decode_command(data)
    if rules is not None:
        _checked(validate_command, command, rules)
    return command


def _decode_command(data: bytes) -> TaskCommand:
    record = codec("TaskCommand").decode(data)
    if not is_valid_task_id(record["task_id"]):
        raise MalformedEvent(f"task_id {record['task_id']!r} is not a valid task id")
    kind = CommandKind(record["kind"])
    spec_record = record["spec"]
    spec = None if spec_record is None else spec_from_avro(spec_record, record["jitter_ms"])
    if kind in (CommandKind.CREATE, CommandKind.UPDATE) and spec is None:
        raise MalformedEvent(f"a {kind.value} command needs a spec")
    retry = record["retry"]
    if kind is CommandKind.RETRY and retry is None:
        raise MalformedEvent("a RETRY command needs a retry request")
    return TaskCommand(
        command_id=record["command_id"],
        task_id=record["task_id"],
        tenant=record["tenant"],
        kind=kind,
        issued_at_ms=record["issued_at_ms"],
        issuer=record["issuer"],
        spec=spec,
        retry=None if retry is None else retry_request_from_avro(retry),
    )


def encode_state(state: TaskState) -> bytes:
    return codec("TaskState").encode(
        {
            "task_id": state.task_id,
            "tenant": state.tenant,
            "spec": spec_to_avro(state.spec),
            "status": state.status.value,
            "next_fire_ms": state.next_fire_ms,
            "last_fire_ms": state.last_fire_ms,
            "fire_count": state.fire_count,
            "created_at_ms": state.created_at_ms,
            "updated_at_ms": state.updated_at_ms,
            "last_command_id": state.last_command_id,
            "pending_retries": [retry_request_to_avro(r) for r in state.pending_retries],
            "recent_command_ids": list(state.recent_command_ids),
            "jitter_ms": state.spec.jitter_ms,
        }
    )


def decode_state(data: bytes) -> TaskState:
    record = codec("TaskState").decode(data)
    return TaskState(
        task_id=record["task_id"],
        tenant=record["tenant"],
        spec=spec_from_avro(record["spec"], record["jitter_ms"]),
        status=TaskStatus(record["status"]),
        next_fire_ms=record["next_fire_ms"],
        last_fire_ms=record["last_fire_ms"],
        fire_count=record["fire_count"],
        created_at_ms=record["created_at_ms"],
        updated_at_ms=record["updated_at_ms"],
        last_command_id=record["last_command_id"],
        pending_retries=tuple(retry_request_from_avro(r) for r in record["pending_retries"]),
        recent_command_ids=tuple(record["recent_command_ids"]),
    )


def encode_due(due: DueTask) -> bytes:
    return codec("DueTask").encode(
        {
            "fire_id": due.fire_id,
            "task_id": due.task_id,
            "tenant": due.tenant,
            "name": due.name,
            "scheduled_at_ms": due.scheduled_at_ms,
            "attempt": due.attempt,
            "emitted_at_ms": due.emitted_at_ms,
            "target": target_to_avro(due.target),
            "retry": retry_to_avro(due.retry),
            "notify": notify_to_avro(due.notify),
            "reason": due.reason.value,
            "jitter_ms": due.jitter_ms,
        }
    )


def decode_due(data: bytes, rules: Rules | None = DEFAULT_RULES) -> DueTask:
    """Decode and validate a firing (``rules=None``: decode only, for replay)."""
    due = _decode_due(data)
    if rules is not None:
        _checked(validate_due, due, rules)
    return due


def _decode_due(data: bytes) -> DueTask:
    record = codec("DueTask").decode(data)
    try:
        reason = FireReason(record["reason"])
    except ValueError:
        raise MalformedEvent(f"reason {record['reason']!r} is not a fire reason") from None
    return DueTask(
        fire_id=record["fire_id"],
        task_id=record["task_id"],
        tenant=record["tenant"],
        name=record["name"],
        scheduled_at_ms=record["scheduled_at_ms"],
        attempt=record["attempt"],
        emitted_at_ms=record["emitted_at_ms"],
        target=target_from_avro(record["target"]),
        retry=retry_from_avro(record["retry"]),
        notify=notify_from_avro(record["notify"]),
        reason=reason,
        jitter_ms=record["jitter_ms"],
    )


def encode_result(result: ExecutionResult) -> bytes:
    return codec("ExecutionResult").encode(
        {
            "fire_id": result.fire_id,
            "task_id": result.task_id,
            "tenant": result.tenant,
            "scheduled_at_ms": result.scheduled_at_ms,
            "attempt": result.attempt,
            "outcome": result.outcome.value.upper(),
            "final": result.final,
            "started_at_ms": result.started_at_ms,
            "finished_at_ms": result.finished_at_ms,
            "lateness_ms": result.lateness_ms,
            "http_status": result.http_status,
            "error": result.error,
            "dispatcher": result.dispatcher,
        }
    )


def decode_result(data: bytes) -> ExecutionResult:
    record = codec("ExecutionResult").decode(data)
    return ExecutionResult(
        fire_id=record["fire_id"],
        task_id=record["task_id"],
        tenant=record["tenant"],
        scheduled_at_ms=record["scheduled_at_ms"],
        attempt=record["attempt"],
        outcome=Outcome(record["outcome"].lower()),
        final=record["final"],
        started_at_ms=record["started_at_ms"],
        finished_at_ms=record["finished_at_ms"],
        lateness_ms=record["lateness_ms"],
        http_status=record["http_status"],
        error=record["error"],
        dispatcher=record["dispatcher"],
    )


def encode_dead_letter(dead: DeadLetter) -> bytes:
    return codec("DeadLetter").encode(
        {
            "reason": dead.reason,
            "error_class": dead.error_class,
            "source_topic": dead.source_topic,
            "source_partition": dead.source_partition,
            "source_offset": dead.source_offset,
            "original_key": dead.original_key,
            "original_value": dead.original_value,
            "task_id": dead.task_id,
            "dead_at_ms": dead.dead_at_ms,
        }
    )


def dead_letter_for(
    message: KafkaMessage, reason: str, now_ms: int, error_class: str = "MalformedEvent"
) -> DeadLetter:
    """The dead letter of a consumed record that could not be used: reason plus original bytes."""
    key = message.key()
    return DeadLetter(
        reason=reason,
        error_class=error_class,
        source_topic=message.topic() or "",
        source_partition=message.partition() or 0,
        source_offset=message.offset() or 0,
        original_key=key,
        original_value=message.value(),
        task_id=key.decode("utf-8", "replace") if key is not None else None,
        dead_at_ms=now_ms,
    )


def decode_dead_letter(data: bytes) -> DeadLetter:
    record = codec("DeadLetter").decode(data)
    return DeadLetter(**record)
