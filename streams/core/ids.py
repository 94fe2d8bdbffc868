"""Identifiers: task ids, command ids and the deterministic fire id."""

from __future__ import annotations

import hashlib
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


# Tenants name the owner of tasks and tokens; they prefix task ids, so they use
# the task-id alphabet minus '.', which separates the prefix from the rest.
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def is_valid_tenant(tenant: str) -> bool:
    return TENANT_PATTERN.fullmatch(tenant) is not None


def tenant_task_id(tenant: str) -> str:
    """A fresh, globally unique task id that shows its tenant: ``acme.3f2c...``.

    Global uniqueness matters because tasks.commands is keyed by task id alone;
    the prefix is for people reading logs, never for access control (the read
    model checks the tenant of every task).
    """
    return f"{tenant}.{uuid.uuid4().hex}"


def fresh_task_ids(tenant: str) -> tuple[str, str]:
    """A new task's id (:func:`tenant_task_id`, or bare without a tenant) and its
    CREATE's command id, from one random draw. The command id is unique because
    the task id is: ``create-`` + the same 128 random bits (other command ids are
    bare hex, or a dedupe create's ``create-`` + a digest: equal only by chance,
    at 2**-128)."""
    random_hex = uuid.uuid4().hex
    return (f"{tenant}.{random_hex}" if tenant else random_hex), f"create-{random_hex}"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def dedupe_task_id(tenant: str, dedupe_key: str) -> str:
    """The task id a create with this dedupe key always gets, in any API instance.

    The tenant is hashed in, so the same key from two tenants gives two tasks.
    """
    return f"{tenant}.k{_digest(tenant, dedupe_key)[:32]}"


def dedupe_command_id(tenant: str, dedupe_key: str) -> str:
    """Retried creates carry one command id, so the processor applies only the first."""
    return "create-" + _digest("create", tenant, dedupe_key)[:32]
