"""The embedded read model: SQLite tables beside the history store's, in the same file.

Same file on purpose: ``kronwheel dev`` resets the history file when it starts
a fresh embedded broker, and the read model (with the projector's offsets)
must be reset with it, or it would describe tasks no topic holds any more.
One connection guarded by a lock, as callers hop threads (asyncio.to_thread).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from streams.core.events import ExecutionResult, TaskCommand, TaskState
from streams.core.projection import ENDED, ShownStatus, derive_status
from streams.ports import AuditEntry, Projection, TaskQuery, TaskRecord, TokenRecord
from streams.views.readmodel.common import audit_trail, command_values, state_values
from streams.views.sqlitefile import locked_transaction, open_shared_file

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS rm_tasks (
    task_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    spec TEXT,                       -- NULL until the processor's first changelog entry
    status TEXT NOT NULL DEFAULT '{ShownStatus.SCHEDULED.value}',
    state_status TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    next_fire_ms INTEGER,
    fire_count INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    last_fire_id TEXT,
    last_outcome TEXT,
    last_final INTEGER NOT NULL DEFAULT 0,
    last_finished_at_ms INTEGER,
    last_scheduled_ms INTEGER,
    last_attempt INTEGER
);
CREATE INDEX IF NOT EXISTS rm_tasks_by_tenant
    ON rm_tasks (tenant, created_at_ms DESC, task_id DESC);
CREATE TABLE IF NOT EXISTS rm_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    command_id TEXT NOT NULL UNIQUE,
    task_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    issued_at_ms INTEGER NOT NULL,
    spec TEXT,
    changes TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_audit_by_task ON rm_audit (task_id, seq);
CREATE TABLE IF NOT EXISTS rm_tokens (
    token_hash TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_offsets (
    projector TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (projector, topic, partition)
);
"""

_TASK_COLUMNS = (
    "task_id, tenant, name, spec, status, next_fire_ms, created_at_ms, updated_at_ms, "
    "fire_count, last_fire_id, last_outcome, last_finished_at_ms"
)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class SqliteReadModel:
    def __init__(self, path: Path) -> None:
        self._conn = open_shared_file(path)
        self._lock = threading.Lock()
        self._conn.executescript(SCHEMA)
        # Every write that changes one of the facts the shown status derives from
        # sets the status in the same statement, from the facts as they will be.
        # (Before, each batch read every touched row back and wrote its status:
        # half of the projector's statements.)
        self._conn.create_function("kw_status", 4, _shown_status, deterministic=True)

    # --- writes (the projector) -------------------------------------------------

    def apply(self, projector: str, batch: Projection) -> None:
        with locked_transaction(self._conn, self._lock):
            for task_id, state in batch.states:
                self._apply_state(task_id, state)
            for result in batch.results:
                self._apply_result(result)
            for command in batch.commands:
                self._apply_command(command)
            self._conn.executemany(
                """INSERT INTO rm_offsets (projector, topic, partition, next_offset)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (projector, topic, partition)
                   DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)""",
                [(projector, t, p, o) for t, p, o in batch.offsets],
            )

    def _apply_state(self, task_id: str, state: TaskState | None) -> None:
        if state is None:
            self._conn.execute(
                """UPDATE rm_tasks SET state_status = ?1, next_fire_ms = NULL,
                       status = kw_status(?1, cancel_requested, last_outcome, last_final)
                   WHERE task_id = ?2""",
                (ENDED, task_id),
            )
            return
        # The tenant of a row never changes: a state that claims another tenant's
        # task id is not applied (the WHERE of the upsert refuses it).
        self._conn.execute(
            """INSERT INTO rm_tasks (task_id, tenant, name, spec, state_status, next_fire_ms,
                   fire_count, created_at_ms, updated_at_ms, status)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (task_id) DO UPDATE SET
                   name = excluded.name, spec = excluded.spec,
                   state_status = excluded.state_status, next_fire_ms = excluded.next_fire_ms,
                   fire_count = excluded.fire_count, created_at_ms = excluded.created_at_ms,
                   updated_at_ms = excluded.updated_at_ms,
                   status = kw_status(excluded.state_status, rm_tasks.cancel_requested,
                                      rm_tasks.last_outcome, rm_tasks.last_final)
               WHERE rm_tasks.tenant = excluded.tenant""",
            (task_id, *state_values(state), _shown_status(state.status.value, 0, None, 0)),
        )

    def _apply_result(self, r: ExecutionResult) -> None:
        # Only the newest firing (scheduled time, then attempt) sets the last outcome,
        # so results read out of order (several partitions, a replay) converge.
        self._conn.execute(
            """INSERT INTO rm_tasks (task_id, tenant, created_at_ms, updated_at_ms,
                   last_fire_id, last_outcome, last_final, last_finished_at_ms,
                   last_scheduled_ms, last_attempt, status)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (task_id) DO UPDATE SET
                   last_fire_id = excluded.last_fire_id, last_outcome = excluded.last_outcome,
                   last_final = excluded.last_final,
                   last_finished_at_ms = excluded.last_finished_at_ms,
                   last_scheduled_ms = excluded.last_scheduled_ms,
                   last_attempt = excluded.last_attempt,
                   status = kw_status(rm_tasks.state_status, rm_tasks.cancel_requested,
                                      excluded.last_outcome, excluded.last_final)
               WHERE rm_tasks.tenant = excluded.tenant AND (
                   rm_tasks.last_scheduled_ms IS NULL
                   OR (rm_tasks.last_scheduled_ms, rm_tasks.last_attempt)
                      <= (excluded.last_scheduled_ms, excluded.last_attempt))""",
            (
                r.task_id,
                r.tenant,
                r.finished_at_ms,
                r.finished_at_ms,
                r.fire_id,
                r.outcome.value,
                int(r.final),
                r.finished_at_ms,
                r.scheduled_at_ms,
                r.attempt,
                _shown_status(None, 0, r.outcome.value, int(r.final)),
            ),
        )

    def _apply_command(self, command: TaskCommand) -> None:
        """Record the audit entry (once per command id); a CANCEL marks its task.

        The entry keeps the command's full spec; what changed is computed when the
        trail is read (it is read rarely, commands arrive by the thousand).
        """
        inserted = self._conn.execute(
            """INSERT INTO rm_audit (command_id, task_id, tenant, kind, issuer, issued_at_ms,
                   spec, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (command_id) DO NOTHING""",
            command_values(command),
        ).rowcount
        if not inserted or command.kind.value != "CANCEL":
            return
        self._conn.execute(
            """UPDATE rm_tasks SET cancel_requested = 1,
                   status = kw_status(state_status, 1, last_outcome, last_final)
               WHERE task_id = ? AND tenant = ?""",
            (command.task_id, command.tenant),
        )

    def offsets(self, projector: str) -> dict[tuple[str, int], int]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT topic, partition, next_offset FROM rm_offsets WHERE projector = ?",
                (projector,),
            ).fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    # --- reads (the API) -----------------------------------------------------------

    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._conn.execute(
                f"""SELECT {_TASK_COLUMNS} FROM rm_tasks
                    WHERE task_id = ? AND tenant = ? AND spec IS NOT NULL""",
                (task_id, tenant),
            ).fetchone()
        return None if row is None else _task(row)

    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        where = ["tenant = ?", "spec IS NOT NULL"]
        args: list[Any] = [query.tenant]
        if query.statuses:
            where.append(f"status IN ({','.join('?' * len(query.statuses))})")
            args.extend(sorted(query.statuses))
        if query.text:
            where.append("(name LIKE ? ESCAPE '\\' OR task_id LIKE ? ESCAPE '\\')")
            args.extend([_like(query.text), _like(query.text)])
        if query.before is not None:
            where.append("(created_at_ms, task_id) < (?, ?)")
            args.extend(query.before)
        args.append(query.limit)
        with self._lock:
            rows = self._conn.execute(
                f"""SELECT {_TASK_COLUMNS} FROM rm_tasks WHERE {" AND ".join(where)}
                    ORDER BY created_at_ms DESC, task_id DESC LIMIT ?""",
                args,
            ).fetchall()
        return [_task(row) for row in rows]

    def audit(self, tenant: str, task_id: str, limit: int = 100) -> list[AuditEntry]:
        with self._lock:
            rows = self._conn.execute(
                """SELECT command_id, task_id, tenant, kind, issuer, issued_at_ms, spec, changes
                   FROM rm_audit WHERE task_id = ? AND tenant = ? ORDER BY seq LIMIT ?""",
                (task_id, tenant, limit),
            ).fetchall()
        return audit_trail(rows)

    # --- tokens ----------------------------------------------------------------------

    def put_token(self, record: TokenRecord) -> None:
        with self._lock:
            self._conn.execute(
                """INSERT INTO rm_tokens (token_hash, tenant, name, admin, created_at_ms)
                   VALUES (?, ?, ?, ?, ?) ON CONFLICT (token_hash) DO NOTHING""",
                (
                    record.token_hash,
                    record.tenant,
                    record.name,
                    int(record.admin),
                    record.created_at_ms,
                ),
            )

    def find_token(self, token_hash: str) -> TokenRecord | None:
        with self._lock:
            row = self._conn.execute(
                """SELECT token_hash, tenant, name, admin, created_at_ms FROM rm_tokens
                   WHERE token_hash = ?""",
                (token_hash,),
            ).fetchone()
        return None if row is None else TokenRecord(row[0], row[1], row[2], bool(row[3]), row[4])

    def purge_expired(self, before_ms: int) -> int:
        """Delete audit rows issued before ``before_ms`` and the rows of tasks that
        ended before it; live tasks and tokens stay. Returns how many rows went."""
        with locked_transaction(self._conn, self._lock):
            audit = self._conn.execute("DELETE FROM rm_audit WHERE issued_at_ms < ?", (before_ms,))
            tasks = self._conn.execute(
                """DELETE FROM rm_tasks WHERE state_status = ?
                   AND COALESCE(last_finished_at_ms, updated_at_ms) < ?""",
                (ENDED, before_ms),
            )
        return int(audit.rowcount) + int(tasks.rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _task(row: tuple[Any, ...]) -> TaskRecord:
    return TaskRecord(
        task_id=row[0],
        tenant=row[1],
        name=row[2],
        spec=orjson.loads(row[3]),
        status=row[4],
        next_fire_ms=row[5],
        created_at_ms=row[6],
        updated_at_ms=row[7],
        fire_count=row[8],
        last_fire_id=row[9],
        last_outcome=row[10],
        last_finished_at_ms=row[11],
    )


def _shown_status(
    state_status: str | None, cancel_requested: int, last_outcome: str | None, last_final: int
) -> str:
    """derive_status over SQLite's column values (its ``kw_status`` function)."""
    return derive_status(state_status, bool(cancel_requested), last_outcome, bool(last_final)).value
