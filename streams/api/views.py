"""JSON views of the read model and history, as the REST API returns them."""

from __future__ import annotations

from typing import Any

from streams.core.events import ExecutionResult
from streams.core.timefmt import format_rfc3339_ms
from streams.ports import TaskRow


def _instant(ms: int | None) -> str | None:
    return None if ms is None else format_rfc3339_ms(ms)


def task_view(row: TaskRow) -> dict[str, Any]:
    status = row.status.lower()
    one_time = "at" in row.spec.get("schedule", {})
    if one_time and status == "scheduled" and row.last_outcome is not None:
        # The walking skeleton's read model: a one-time task is complete once its
        # firing has a final outcome. The read-model issue feeds status from tasks.state.
        status = "completed"
    return {
        "id": row.task_id,
        "tenant": row.tenant,
        **row.spec,
        "status": status,
        "next_fire_at": _instant(row.next_fire_ms) if status == "scheduled" else None,
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
