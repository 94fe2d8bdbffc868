"""The production history store: Cassandra through cassandra-driver.

Tables are in ``infra/cassandra/schema.cql`` (applied on open, all IF NOT
EXISTS). Writes go through prepared statements, many at once with the driver's
bounded concurrency (``execute_concurrent_with_args``). The row keyed by fire id
is written with ``IF NOT EXISTS`` (a lightweight transaction), so the first
outcome of a fire id wins exactly as in SQLite; the query tables (by task, by
day, by partition) are then upserted with the winning row, which makes a redo
after a crash complete any of them a crash left out. That LWT costs about four
round trips per fire id: it is the price of "one outcome per fire id" when two
dispatchers race on a moved partition.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from streams.core.events import ExecutionResult
from streams.ports import DueSource, RecordedExecution
from streams.views.history.rows import RESULT_COLUMNS, result_from_columns, result_values

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DAY_SHARDS = 8
DEFAULT_CONCURRENCY = 64


def schema_statements(keyspace: str) -> list[str]:
    """The CQL of infra/cassandra/schema.cql, for the given keyspace, one statement each."""
    text = (resources.files("streams.infra") / "cassandra" / "schema.cql").read_text("utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    text = re.sub(r"\bkronwheel\b", keyspace, text)
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def day_shard(task_id: str) -> int:
    return zlib.crc32(task_id.encode()) % DAY_SHARDS


class CassandraHistoryStore:
    def __init__(
        self,
        contact_points: Sequence[str],
        keyspace: str = "kronwheel",
        ttl_s: int = 0,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.query import dict_factory

        hosts, port = split_contact_points(contact_points)
        profile = ExecutionProfile(
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            row_factory=dict_factory,
            request_timeout=10.0,
        )
        self._cluster = Cluster(
            hosts, port=port, execution_profiles={EXEC_PROFILE_DEFAULT: profile}
        )
        self._session = self._cluster.connect()
        for statement in schema_statements(keyspace):
            self._session.execute(statement, timeout=60.0)
        self._session.set_keyspace(keyspace)
        self._ttl_s = ttl_s
        self._concurrency = concurrency
        ks = keyspace
        columns = ", ".join(RESULT_COLUMNS)
        marks = ", ".join("?" * (len(RESULT_COLUMNS) + 2))
        prepare = self._session.prepare
        self._insert_by_fire_id = prepare(
            f"INSERT INTO {ks}.executions_by_fire_id ({columns}, due_partition, due_offset) "
            f"VALUES ({marks}) IF NOT EXISTS USING TTL ?"
        )
        self._insert_by_task = prepare(
            f"INSERT INTO {ks}.executions_by_task (bucket, {columns}) "
            f"VALUES (?, {', '.join('?' * len(RESULT_COLUMNS))}) USING TTL ?"
        )
        self._insert_bucket = prepare(
            f"INSERT INTO {ks}.task_buckets (task_id, bucket) VALUES (?, ?) USING TTL ?"
        )
        self._insert_by_day = prepare(
            f"INSERT INTO {ks}.executions_by_day (day, shard, {columns}) "
            f"VALUES (?, ?, {', '.join('?' * len(RESULT_COLUMNS))}) USING TTL ?"
        )
        self._insert_by_partition = prepare(
            f"INSERT INTO {ks}.fire_ids_by_partition "
            "(due_partition, hour, scheduled_at_ms, fire_id, due_offset) "
            "VALUES (?, ?, ?, ?, ?) USING TTL ?"
        )
        self._select_by_fire_id = prepare(
            f"SELECT {columns}, due_partition, due_offset FROM {ks}.executions_by_fire_id "
            "WHERE fire_id = ?"
        )
        self._select_buckets = prepare(
            f"SELECT bucket FROM {ks}.task_buckets WHERE task_id = ? LIMIT ?"
        )
        self._select_by_task = prepare(
            f"SELECT {columns} FROM {ks}.executions_by_task "
            "WHERE task_id = ? AND bucket = ? LIMIT ?"
        )
        self._select_by_day = prepare(
            f"SELECT {columns} FROM {ks}.executions_by_day WHERE day = ? AND shard = ? "
            "AND scheduled_at_ms >= ? AND scheduled_at_ms < ? LIMIT ?"
        )
        self._select_by_partition = prepare(
            f"SELECT fire_id, scheduled_at_ms, due_offset FROM {ks}.fire_ids_by_partition "
            "WHERE due_partition = ? AND hour = ? AND scheduled_at_ms >= ?"
        )

    def _run(self, statement: Any, parameters: Iterable[Sequence[Any]]) -> list[Any]:
        """Run one prepared statement over many parameter rows, a bounded number at once."""
        from cassandra.concurrent import execute_concurrent_with_args

        outcomes = execute_concurrent_with_args(
            self._session, statement, list(parameters), concurrency=self._concurrency
        )
        return [result for _success, result in outcomes]

    def record_executions(
        self,
        results: Sequence[ExecutionResult],
        sources: Mapping[str, DueSource] | None = None,
    ) -> int:
        sources = sources or {}
        unique = list({r.fire_id: r for r in results}.values())
        if not unique:
            return 0
        answers = self._run(
            self._insert_by_fire_id,
            (
                (
                    *result_values(r),
                    *_source_values(sources.get(r.fire_id)),
                    self._ttl_s,
                )
                for r in unique
            ),
        )
        winners: list[tuple[ExecutionResult, DueSource | None]] = []
        inserted = 0
        for mine, answer in zip(unique, answers, strict=True):
            if answer.was_applied:
                inserted += 1
                winners.append((mine, sources.get(mine.fire_id)))
            else:
                existing = answer.one()
                winners.append((result_from_columns(existing), _source_from_row(existing)))
        self._write_query_tables(winners)
        return inserted

    def _write_query_tables(self, winners: list[tuple[ExecutionResult, DueSource | None]]) -> None:
        ttl = self._ttl_s
        self._run(
            self._insert_by_task,
            ((r.scheduled_at_ms // DAY_MS, *result_values(r), ttl) for r, _ in winners),
        )
        self._run(
            self._insert_bucket,
            {(r.task_id, r.scheduled_at_ms // DAY_MS, ttl) for r, _ in winners},
        )
        self._run(
            self._insert_by_day,
            (
                (r.scheduled_at_ms // DAY_MS, day_shard(r.task_id), *result_values(r), ttl)
                for r, _ in winners
            ),
        )
        self._run(
            self._insert_by_partition,
            (
                (
                    s.partition,
                    r.scheduled_at_ms // HOUR_MS,
                    r.scheduled_at_ms,
                    r.fire_id,
                    s.offset,
                    ttl,
                )
                for r, s in winners
                if s is not None
            ),
        )

    def executions(self, task_id: str, limit: int = 100) -> list[ExecutionResult]:
        found: list[ExecutionResult] = []
        buckets = [
            row["bucket"] for row in self._session.execute(self._select_buckets, (task_id, 1000))
        ]
        for bucket in buckets:
            rows = self._session.execute(
                self._select_by_task, (task_id, bucket, limit - len(found))
            )
            found.extend(result_from_columns(row) for row in rows)
            if len(found) >= limit:
                break
        return found

    def executions_between(
        self, start_ms: int, end_ms: int, limit: int = 10_000
    ) -> list[ExecutionResult]:
        if end_ms <= start_ms:
            return []
        days = range(start_ms // DAY_MS, (end_ms - 1) // DAY_MS + 1)
        answers = self._run(
            self._select_by_day,
            ((day, shard, start_ms, end_ms, limit) for day in days for shard in range(DAY_SHARDS)),
        )
        rows = [result_from_columns(row) for answer in answers for row in answer]
        rows.sort(key=lambda r: (r.scheduled_at_ms, r.fire_id))
        return rows[:limit]

    def recorded(self, fire_ids: Sequence[str]) -> dict[str, RecordedExecution]:
        unique = list(dict.fromkeys(fire_ids))
        answers = self._run(self._select_by_fire_id, ((f,) for f in unique))
        found: dict[str, RecordedExecution] = {}
        for answer in answers:
            row = answer.one()
            if row is not None:
                found[row["fire_id"]] = RecordedExecution(
                    result_from_columns(row), _source_from_row(row)
                )
        return found

    def recent_fire_ids(self, partition: int, since_ms: int) -> dict[str, tuple[int, int | None]]:
        # Up to an hour past the local clock: a firing may be recorded a little
        # "in the future" of this machine when clocks differ.
        hours = range(since_ms // HOUR_MS, (time.time_ns() // 1_000_000) // HOUR_MS + 2)
        answers = self._run(
            self._select_by_partition, ((partition, hour, since_ms) for hour in hours)
        )
        return {
            row["fire_id"]: (row["scheduled_at_ms"], row["due_offset"])
            for answer in answers
            for row in answer
        }

    def close(self) -> None:
        self._cluster.shutdown()


def split_contact_points(points: Sequence[str]) -> tuple[list[str], int]:
    """``host`` or ``host:port`` entries (one port for all, as the driver wants)."""
    hosts: list[str] = []
    port = 9042
    for point in points:
        host, sep, maybe_port = point.rpartition(":")
        if sep and maybe_port.isdigit() and ":" not in host:
            hosts.append(host)
            port = int(maybe_port)
        else:
            hosts.append(point)
    return hosts, port


def _source_values(source: DueSource | None) -> tuple[int | None, int | None]:
    return (None, None) if source is None else (source.partition, source.offset)


def _source_from_row(row: Mapping[str, Any]) -> DueSource | None:
    if row.get("due_partition") is None or row.get("due_offset") is None:
        return None
    return DueSource(row["due_partition"], row["due_offset"])
