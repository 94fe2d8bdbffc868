"""Identifiers: task ids, command ids and the deterministic fire id."""

from __future__ import annotations

import re
import uuid

# Task ids travel as Kafka keys, URL path segments and Cassandra keys; keep them
# to a safe alphabet. ':' is excluded because it separates the parts of a fire id.
TASK_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_task_id() -> str:
    return uuid.uuid4().hex


def new_command_id() -> str:
    return uuid.uuid4().hex


def is_valid_task_id(task_id: str) -> bool:
    return TASK_ID_PATTERN.fullmatch(task_id) is not None


def fire_id(task_id: str, scheduled_ms: int, attempt: int) -> str:
    """The identity of one attempt of one firing, the same on every replay.

    Deterministic (no randomness, no wall clock) so that a firing emitted twice
    (a crash before commit, a replay of ``tasks.due``) carries the same id, which
    the history store and the target's ``Idempotency-Key`` use to drop doubles.
    """
    return f"{task_id}:{scheduled_ms}:{attempt}"
