"""What both read model stores share: the columns of a changelog entry, and the audit
trail (what each command changed) computed on read from stored entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.core.events import TaskCommand, TaskState
from streams.core.projection import spec_changes
from streams.core.render import spec_to_json
from streams.ports import AuditEntry


def audit_trail(rows: Iterable[tuple[Any, ...]]) -> list[AuditEntry]:
    """Entries from stored rows (command_id, task_id, tenant, kind, issuer, issued_at_ms,
    spec JSON or None, changes JSON), in command order; a spec-carrying entry's
    changes are its differences from the spec before it."""
    trail: list[AuditEntry] = []
    previous: dict[str, Any] | None = None
    for command_id, task_id, tenant, kind, issuer, issued_at_ms, spec, changes in rows:
        found = tuple(orjson.loads(changes))
        if spec is not None:
            current = orjson.loads(spec)
            found = spec_changes(previous, current)
            previous = current
        trail.append(AuditEntry(command_id, task_id, tenant, kind, issuer, issued_at_ms, found))
    return trail


def state_values(state: TaskState) -> tuple[Any, ...]:
    """(tenant, name, spec JSON, status, next fire, fire count, created, updated)."""
    return (
        state.tenant,
        state.spec.name,
        orjson.dumps(spec_to_json(state.spec)).decode(),
        state.status.value,
        state.next_fire_ms,
        state.fire_count,
        state.created_at_ms,
        state.updated_at_ms,
    )


def command_values(command: TaskCommand) -> tuple[Any, ...]:
    """(command id, task id, tenant, kind, issuer, issued at, spec JSON or None, changes JSON).

    Only a RETRY's changes are known without the spec before it; the others'
    are computed when the trail is read (:func:`audit_trail`).
    """
    spec = None if command.spec is None else orjson.dumps(spec_to_json(command.spec)).decode()
    retry = (
        ({"field": "attempt", "from": None, "to": command.retry.attempt},)
        if command.retry is not None
        else ()
    )
    return (
        command.command_id,
        command.task_id,
        command.tenant,
        command.kind.value,
        command.issuer,
        command.issued_at_ms,
        spec,
        orjson.dumps(retry).decode(),
    )
