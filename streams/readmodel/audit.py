"""The audit trail from stored entries: what each command changed, computed on read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from streams.core.projection import spec_changes
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
