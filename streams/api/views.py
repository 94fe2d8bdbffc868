"""JSON views of the read model and history, as the REST API and the WebSocket show them."""

from __future__ import annotations

from typing import Any

from streams.core.events import ExecutionResult, TaskCommand
from streams.core.projection import ShownStatus
from streams.core.render import spec_to_json
from streams.core.schedule import first_fire_ms
from streams.core.timefmt import format_rfc3339_ms
from streams.ports import AuditEntry, TaskRecord


def _instant(ms: int | None) -> str | None:
    return None if ms is None else format_rfc3339_ms(ms)


def task_view(row: TaskRecord) -> dict[str, Any]:
    return {
        **row.spec,
        "id": row.task_id,
        "tenant": row.tenant,
        "name": row.name,
        "status": row.status,
        "next_fire_at": _instant(row.next_fire_ms) if row.status == ShownStatus.SCHEDULED else None,
        "fire_count": row.fire_count,
        "created_at": _instant(row.created_at_ms),
        "updated_at": _instant(row.updated_at_ms),
        "last_outcome": None
        if row.last_outcome is None
        else {
            "fire_id": row.last_fire_id,
            "outcome": row.last_outcome,
            "finished_at": _instant(row.last_finished_at_ms),
        },
    }


def accepted_record(command: TaskCommand, now_ms: int) -> TaskRecord:
    """What a just-accepted CREATE will look like once applied (next fire from the core)."""
    assert command.spec is not None
    return TaskRecord(
        task_id=command.task_id,
        tenant=command.tenant,
        name=command.spec.name,
        spec=spec_to_json(command.spec),
        status=ShownStatus.SCHEDULED,
        next_fire_ms=first_fire_ms(command.spec.schedule, now_ms),
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
    )


def execution_view(result: ExecutionResult) -> dict[str, Any]:
    return {
        "fire_id": result.fire_id,
        "task_id": result.task_id,
        "scheduled_at": format_rfc3339_ms(result.scheduled_at_ms),
        "attempt": result.attempt,
        "outcome": result.outcome.value,
        "final": result.final,
        "started_at": format_rfc3339_ms(result.started_at_ms),
        "finished_at": format_rfc3339_ms(result.finished_at_ms),
        "lateness_ms": result.lateness_ms,
        "duration_ms": result.finished_at_ms - result.started_at_ms,
        "http_status": result.http_status,
        "error": result.error,
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "command_id": entry.command_id,
        "kind": entry.kind.lower(),
        "issuer": entry.issuer,
        "issued_at": format_rfc3339_ms(entry.issued_at_ms),
        "changes": list(entry.changes),
    }
