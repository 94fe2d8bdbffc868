"""The read model in Cassandra, for production (schema: infra/cassandra/20-readmodel.cql,
in a keyspace the operator created: infra/cassandra/00-keyspace.cql).

Every write is an idempotent upsert. Result columns are written with a
Cassandra write timestamp derived from (scheduled time, attempt), so the newest
firing's outcome wins whatever order results are read in, without a read
before the write; the projector's offsets are written with the offset as their
timestamp, so they never go back. Status is derived on read from the stored
facts. Audit rows, and a task's rows once it has ended, expire after the
retention (``ttl_s``, KRONWHEEL_HISTORY_TTL_S; 0 keeps them).
"""

from __future__ import annotations

from typing import Any

import orjson

from streams.core.events import ExecutionResult, TaskCommand, TaskState
from streams.core.projection import ENDED, derive_status
from streams.ports import AuditEntry, Projection, TaskQuery, TaskRecord, TokenRecord
from streams.views.cassandra_schema import DEFAULT_KEYSPACE, READMODEL_FILE, apply_tables
from streams.views.readmodel.common import audit_trail, command_values, state_values

# Offsets are written at this timestamp plus the offset: above every wall-clock
# write timestamp (2^61 microseconds is in the year 4300), so the greatest offset wins.
OFFSET_STAMP_BASE = 1 << 61
# Rows scanned per page while filtering a list by status or text, in Python.
SCAN_PAGE = 500
MAX_SCANNED = 20_000


def _result_timestamp_us(result: ExecutionResult) -> int:
    # Microsecond write timestamps: the scheduled ms, then the attempt (< 1000).
    return result.scheduled_at_ms * 1000 + min(result.attempt, 999)


class CassandraReadModel:
    def __init__(self, session: Any, keyspace: str = DEFAULT_KEYSPACE, ttl_s: int = 0) -> None:
        self._session = session
        self._ttl_s = ttl_s
        apply_tables(session, READMODEL_FILE, keyspace)
        session.set_keyspace(keyspace)
        prepare = session.prepare
        self._put_state = prepare(
            """UPDATE rm_tasks SET tenant = ?, name = ?, spec = ?, state_status = ?,
               next_fire_ms = ?, fire_count = ?, created_at_ms = ?, updated_at_ms = ?
               WHERE task_id = ?"""
        )
        self._put_index = prepare(
            "INSERT INTO rm_tasks_by_tenant (tenant, created_at_ms, task_id) VALUES (?, ?, ?)"
        )
        self._end = prepare(
            "UPDATE rm_tasks SET state_status = ?, next_fire_ms = null WHERE task_id = ?"
        )
        # An ended task's row is written again whole with the retention TTL (a TTL
        # applies per cell, so every cell is rewritten); live tasks never expire.
        self._expire_task = prepare(
            """UPDATE rm_tasks USING TTL ? SET tenant = ?, name = ?, spec = ?, state_status = ?,
               cancel_requested = ?, fire_count = ?, created_at_ms = ?, updated_at_ms = ?
               WHERE task_id = ?"""
        )
        self._expire_index = prepare(
            "INSERT INTO rm_tasks_by_tenant (tenant, created_at_ms, task_id) VALUES (?, ?, ?) "
            "USING TTL ?"
        )
        self._put_result = prepare(
            """UPDATE rm_tasks USING TIMESTAMP ? SET last_fire_id = ?, last_outcome = ?,
               last_final = ?, last_finished_at_ms = ? WHERE task_id = ?"""
        )
        self._cancel = prepare("UPDATE rm_tasks SET cancel_requested = true WHERE task_id = ?")
        self._get = prepare("SELECT * FROM rm_tasks WHERE task_id = ?")
        self._put_audit = prepare(
            """INSERT INTO rm_audit (command_id, task_id, tenant, kind, issuer, issued_at_ms,
               spec, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?"""
        )
        self._audit = prepare("SELECT * FROM rm_audit WHERE task_id = ? LIMIT ?")
        self._put_offset = prepare(
            "INSERT INTO rm_offsets (projector, topic, partition, next_offset) VALUES (?, ?, ?, ?) "
            "USING TIMESTAMP ?"
        )
        self._offsets = prepare("SELECT * FROM rm_offsets WHERE projector = ?")
        self._put_token = prepare(
            """INSERT INTO rm_tokens (token_hash, tenant, name, admin, created_at_ms)
               VALUES (?, ?, ?, ?, ?) IF NOT EXISTS"""
        )
        self._token = prepare("SELECT * FROM rm_tokens WHERE token_hash = ?")
        self._page = prepare(
            "SELECT task_id, created_at_ms FROM rm_tasks_by_tenant WHERE tenant = ? LIMIT ?"
        )
        self._page_before = prepare(
            """SELECT task_id, created_at_ms FROM rm_tasks_by_tenant WHERE tenant = ?
               AND (created_at_ms, task_id) < (?, ?) LIMIT ?"""
        )

    @classmethod
    def connect(
        cls, contact_points: tuple[str, ...], keyspace: str = DEFAULT_KEYSPACE, ttl_s: int = 0
    ) -> CassandraReadModel:
        from cassandra.cluster import Cluster

        hosts, ports = zip(*(_host_port(p) for p in contact_points), strict=True)
        cluster = Cluster(list(hosts), port=ports[0])
        return cls(cluster.connect(), keyspace, ttl_s)

    # --- writes ------------------------------------------------------------------------

    def apply(self, projector: str, batch: Projection) -> None:
        execute = self._session.execute
        for task_id, state in batch.states:
            self._apply_state(task_id, state)
        for r in batch.results:
            if self._tenant_of(r.task_id) not in (None, r.tenant):
                continue
            execute(
                self._put_result,
                (
                    _result_timestamp_us(r),
                    r.fire_id,
                    r.outcome.value,
                    r.final,
                    r.finished_at_ms,
                    r.task_id,
                ),
            )
        for command in batch.commands:
            self._apply_command(command)
        # Offsets last: a crash before this re-applies the batch, which is idempotent.
        # The offset is its own write timestamp (above any wall-clock one): a late or
        # repeated batch cannot move it back, with no read and no lightweight transaction.
        for topic, partition, offset in batch.offsets:
            execute(
                self._put_offset, (projector, topic, partition, offset, OFFSET_STAMP_BASE + offset)
            )

    def _tenant_of(self, task_id: str) -> str | None:
        row = self._session.execute(self._get, (task_id,)).one()
        return None if row is None else row.tenant

    def _apply_state(self, task_id: str, state: TaskState | None) -> None:
        if state is None:
            self._session.execute(self._end, (ENDED, task_id))
            self._expire(task_id)
            return
        if self._tenant_of(task_id) not in (None, state.tenant):
            return  # a task id never changes tenant
        self._session.execute(
            self._put_state,
            (*state_values(state), task_id),
        )
        self._session.execute(self._put_index, (state.tenant, state.created_at_ms, task_id))

    def _expire(self, task_id: str) -> None:
        if not self._ttl_s:
            return
        row = self._session.execute(self._get, (task_id,)).one()
        if row is None or row.tenant is None:
            return
        self._session.execute(
            self._expire_task,
            (
                self._ttl_s,
                row.tenant,
                row.name,
                row.spec,
                row.state_status,
                row.cancel_requested,
                row.fire_count,
                row.created_at_ms,
                row.updated_at_ms,
                task_id,
            ),
        )
        if row.created_at_ms is not None:
            self._session.execute(
                self._expire_index, (row.tenant, row.created_at_ms, task_id, self._ttl_s)
            )

    def _apply_command(self, command: TaskCommand) -> None:
        self._session.execute(self._put_audit, (*command_values(command), self._ttl_s))
        if command.kind.value == "CANCEL" and self._tenant_of(command.task_id) == command.tenant:
            self._session.execute(self._cancel, (command.task_id,))

    def offsets(self, projector: str) -> dict[tuple[str, int], int]:
        rows = self._session.execute(self._offsets, (projector,))
        return {(r.topic, r.partition): r.next_offset for r in rows}

    # --- reads ---------------------------------------------------------------------------

    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None:
        row = self._session.execute(self._get, (task_id,)).one()
        if row is None or row.tenant != tenant or row.spec is None:
            return None
        return _record(row)

    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        found: list[TaskRecord] = []
        before = query.before
        scanned = 0
        while len(found) < query.limit and scanned < MAX_SCANNED:
            if before is None:
                page = list(self._session.execute(self._page, (query.tenant, SCAN_PAGE)))
            else:
                page = list(
                    self._session.execute(self._page_before, (query.tenant, *before, SCAN_PAGE))
                )
            if not page:
                break
            scanned += len(page)
            for entry in page:
                record = self.get_task(query.tenant, entry.task_id)
                if record is not None and _matches(record, query):
                    found.append(record)
                    if len(found) == query.limit:
                        break
            before = (page[-1].created_at_ms, page[-1].task_id)
        return found

    def audit(self, tenant: str, task_id: str, limit: int = 100) -> list[AuditEntry]:
        rows = self._session.execute(self._audit, (task_id, limit))
        return audit_trail(
            (r.command_id, r.task_id, r.tenant, r.kind, r.issuer, r.issued_at_ms, r.spec, r.changes)
            for r in rows
            if r.tenant == tenant
        )

    def put_token(self, record: TokenRecord) -> None:
        self._session.execute(
            self._put_token,
            (record.token_hash, record.tenant, record.name, record.admin, record.created_at_ms),
        )

    def find_token(self, token_hash: str) -> TokenRecord | None:
        r = self._session.execute(self._token, (token_hash,)).one()
        if r is None:
            return None
        return TokenRecord(r.token_hash, r.tenant, r.name, bool(r.admin), r.created_at_ms)

    def purge_expired(self, before_ms: int) -> int:
        """Nothing to do: audit rows and ended tasks carry the retention as their TTL."""
        return 0

    def close(self) -> None:
        self._session.cluster.shutdown()


def _host_port(point: str) -> tuple[str, int]:
    host, _, port = point.rpartition(":")
    return (host, int(port)) if host and port.isdigit() else (point, 9042)


def _matches(record: TaskRecord, query: TaskQuery) -> bool:
    if query.statuses and record.status not in query.statuses:
        return False
    if query.text:
        text = query.text.lower()
        return text in record.name.lower() or text in record.task_id.lower()
    return True


def _record(row: Any) -> TaskRecord:
    return TaskRecord(
        task_id=row.task_id,
        tenant=row.tenant,
        name=row.name or "",
        spec=orjson.loads(row.spec),
        status=derive_status(
            row.state_status, bool(row.cancel_requested), row.last_outcome, bool(row.last_final)
        ),
        next_fire_ms=row.next_fire_ms,
        created_at_ms=row.created_at_ms or 0,
        updated_at_ms=row.updated_at_ms or 0,
        fire_count=row.fire_count or 0,
        last_fire_id=row.last_fire_id,
        last_outcome=row.last_outcome,
        last_finished_at_ms=row.last_finished_at_ms,
    )
