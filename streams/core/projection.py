"""Pure pieces of the read model: a task's shown status, and what a command changed.

The projector sees three topics in no particular order relative to each other
(tasks.state, tasks.results, tasks.commands), so the status is derived from
facts that each arrive on their own, and it comes out the same whatever the
interleaving.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from streams.core.events import TaskStatus
from streams.core.model import Outcome


class ShownStatus(StrEnum):
    """The status the API shows (and the read model stores): lower case, and
    ``failed`` besides the changelog's statuses, for a task whose last run failed."""

    SCHEDULED = "scheduled"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


# What tasks.state says about a task: a TaskStatus value, or ENDED for a
# tombstone (the changelog has no status for a task that is gone).
ENDED = "ENDED"
LIVE_STATUSES = frozenset({TaskStatus.SCHEDULED, TaskStatus.PAUSED})
SHOWN_STATUSES = tuple(status.value for status in ShownStatus)
# Statuses a task never leaves: commands other than reads are refused.
ENDED_STATUSES = frozenset({ShownStatus.COMPLETED, ShownStatus.CANCELLED, ShownStatus.FAILED})
# Header values often carry credentials: the audit trail says they changed, not to what.
REDACTED = "***"


def derive_status(
    state_status: str | None, cancel_requested: bool, last_outcome: str | None, last_final: bool
) -> ShownStatus:
    """The status the API shows, from the facts the projector has seen so far.

    A live changelog entry wins. An ended task was cancelled if a CANCEL was
    issued for it, failed if its last final outcome failed, completed otherwise.
    Until the processor's first changelog entry arrives the task is scheduled
    (it was accepted; a refused command leaves no state and the row no spec).
    """
    if state_status in LIVE_STATUSES:
        return ShownStatus(state_status.lower())
    if state_status is None:
        return ShownStatus.SCHEDULED
    if state_status == TaskStatus.CANCELLED or cancel_requested:
        return ShownStatus.CANCELLED
    if last_final and last_outcome == Outcome.FAILED:
        return ShownStatus.FAILED
    return ShownStatus.COMPLETED


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and (value or not prefix):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def spec_changes(
    before: dict[str, Any] | None, after: dict[str, Any]
) -> tuple[dict[str, Any], ...]:
    """Field-level differences between two REST specs: ({"field", "from", "to"}, ...).

    Fields are dotted paths (``schedule.cron``); header values are redacted.
    """
    old = _flatten(before or {}, "", {})
    new = _flatten(after, "", {})
    changes = []
    for field in sorted(old.keys() | new.keys()):
        if old.get(field) == new.get(field):
            continue
        secret = field.startswith("target.http.headers.")
        changes.append(
            {
                "field": field,
                "from": REDACTED if secret and field in old else old.get(field),
                "to": REDACTED if secret and field in new else new.get(field),
            }
        )
    return tuple(changes)
