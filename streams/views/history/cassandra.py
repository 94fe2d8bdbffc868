"""The production history store: Cassandra through cassandra-driver.

Tables are in ``infra/cassandra/10-history.cql``, created IF NOT EXISTS on open
in a keyspace the operator made (``infra/cassandra/00-keyspace.cql``). Every
query names one partition; statements are prepared; many run at once with the
driver's bounded concurrency (``execute_concurrent_with_args``).

One outcome per fire id without a lightweight transaction: every row is a plain
upsert whose write timestamp FALLS with the time of recording
(``2^62 - recorded microseconds``). Last-write-wins then keeps the outcome
recorded first, in every table and on every replica, whatever order the writes
arrive in, and a redo after a crash is a no-op. A write is one round trip where
an ``IF NOT EXISTS`` costs four (Paxos prepare, read, propose, commit).

Knowing whether *this* write won needs a read. ``record_executions`` reads the
fire ids back unless the caller says no competitor can exist
(``contended=False``: the dispatcher says so for partitions it has owned longer
than any attempt of a previous owner can run), so the common case is one round
trip and the rare one (a partition just moved) two.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from streams.core.events import ExecutionResult
from streams.ports import DueSource, RecordedExecution
from streams.views.cassandra_schema import HISTORY_FILE, apply_tables
from streams.views.history.rows import RESULT_COLUMNS, result_from_columns, result_values

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
DAY_SHARDS = 8
DEFAULT_CONCURRENCY = 64


# Write timestamps fall from here as recording time grows: the first recording wins.
FIRST_WINS_BASE_US = 1 << 62


def first_wins_timestamp(recorded_at_us: int) -> int:
    return FIRST_WINS_BASE_US - recorded_at_us


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
        apply_tables(self._session, HISTORY_FILE, keyspace)
        self._session.set_keyspace(keyspace)
        self._ttl_s = ttl_s
        self._concurrency = concurrency
        ks = keyspace
        columns = ", ".join(RESULT_COLUMNS)
        marks = ", ".join("?" * (len(RESULT_COLUMNS) + 2))
        prepare = self._session.prepare
        self._insert_by_fire_id = prepare(
            f"INSERT INTO {ks}.executions_by_fire_id ({columns}, due_partition, due_offset) "
            f"VALUES ({marks}) USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_by_task = prepare(
            f"INSERT INTO {ks}.executions_by_task (bucket, {columns}) "
            f"VALUES (?, {', '.join('?' * len(RESULT_COLUMNS))}) USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_bucket = prepare(
            f"INSERT INTO {ks}.task_buckets (task_id, bucket) VALUES (?, ?) "
            "USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_by_day = prepare(
            f"INSERT INTO {ks}.executions_by_day (day, shard, {columns}) "
            f"VALUES (?, ?, {', '.join('?' * len(RESULT_COLUMNS))}) USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_by_partition = prepare(
            f"INSERT INTO {ks}.fire_ids_by_partition "
            "(due_partition, hour, scheduled_at_ms, fire_id, due_offset) "
            "VALUES (?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_partition_hour = prepare(
            f"INSERT INTO {ks}.partition_hours (due_partition, hour) VALUES (?, ?) "
            "USING TTL ? AND TIMESTAMP ?"
        )
        self._insert_day = prepare(
            f"INSERT INTO {ks}.history_days (anchor, day) VALUES (0, ?) USING TTL ? AND TIMESTAMP ?"
        )
        self._select_days = prepare(
            f"SELECT day FROM {ks}.history_days WHERE anchor = 0 AND day >= ? AND day <= ?"
        )
        self._select_partition_hours = prepare(
            f"SELECT hour FROM {ks}.partition_hours WHERE due_partition = ? AND hour >= ?"
        )
        self._select_by_fire_id = prepare(
            f"SELECT {columns}, due_partition, due_offset FROM {ks}.executions_by_fire_id "
            "WHERE fire_id = ?"
        )
        # Whose write stayed: the row's write timestamp is the stamp of the recording
        # that won (the earliest), so it equals this store's stamp only if that was us.
        self._select_stamp = prepare(
            f"SELECT fire_id, WRITETIME(task_id) AS stamp FROM {ks}.executions_by_fire_id "
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
        contended: bool = True,
    ) -> int:
        sources = sources or {}
        unique = list({r.fire_id: r for r in results}.values())
        if not unique:
            return 0
        stamp = first_wins_timestamp(time.time_ns() // 1000)
        ttl = self._ttl_s
        self._run(
            self._insert_by_fire_id,
            (
                (*result_values(r), *_source_values(sources.get(r.fire_id)), ttl, stamp)
                for r in unique
            ),
        )
        self._write_query_tables([(r, sources.get(r.fire_id)) for r in unique], stamp)
        if not contended:
            return len(unique)
        # Read back: a row whose write timestamp is not ours was recorded first by
        # someone else (or by an earlier run of this very outcome: not new either).
        answers = self._run(self._select_stamp, ((r.fire_id,) for r in unique))
        stamps = [row["stamp"] for answer in answers for row in answer]
        return sum(1 for written in stamps if written == stamp)

    def _write_query_tables(
        self, rows: list[tuple[ExecutionResult, DueSource | None]], stamp: int
    ) -> None:
        ttl = self._ttl_s
        self._run(
            self._insert_by_task,
            ((r.scheduled_at_ms // DAY_MS, *result_values(r), ttl, stamp) for r, _ in rows),
        )
        self._run(self._insert_day, {(r.scheduled_at_ms // DAY_MS, ttl, stamp) for r, _ in rows})
        self._run(
            self._insert_bucket,
            {(r.task_id, r.scheduled_at_ms // DAY_MS, ttl, stamp) for r, _ in rows},
        )
        self._run(
            self._insert_by_day,
            (
                (r.scheduled_at_ms // DAY_MS, day_shard(r.task_id), *result_values(r), ttl, stamp)
                for r, _ in rows
            ),
        )
        with_source = [(r, s) for r, s in rows if s is not None]
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
                    stamp,
                )
                for r, s in with_source
            ),
        )
        self._run(
            self._insert_partition_hour,
            {(s.partition, r.scheduled_at_ms // HOUR_MS, ttl, stamp) for r, s in with_source},
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
        # Only the days that hold rows (history_days, one partition), oldest first,
        # until the limit is reached: a window of any width costs the days it covers
        # that have history, never one query per calendar day.
        days = [
            row["day"]
            for row in self._session.execute(
                self._select_days, (_day_bound(start_ms), _day_bound(end_ms - 1))
            )
        ]
        rows: list[ExecutionResult] = []
        for day in sorted(days):
            answers = self._run(
                self._select_by_day,
                ((day, shard, start_ms, end_ms, limit) for shard in range(DAY_SHARDS)),
            )
            found = [result_from_columns(row) for answer in answers for row in answer]
            rows.extend(sorted(found, key=lambda r: (r.scheduled_at_ms, r.fire_id)))
            if len(rows) >= limit:
                break
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
        # The hours that have rows come from partition_hours (one partition), so
        # the window does not depend on this machine's clock.
        hours = [
            row["hour"]
            for row in self._session.execute(
                self._select_partition_hours, (partition, since_ms // HOUR_MS)
            )
        ]
        answers = self._run(
            self._select_by_partition, ((partition, hour, since_ms) for hour in hours)
        )
        return {
            row["fire_id"]: (row["scheduled_at_ms"], row["due_offset"])
            for answer in answers
            for row in answer
        }

    def purge_expired(self, before_ms: int) -> int:
        """Nothing to do: every row was written with the retention as its TTL."""
        return 0

    def close(self) -> None:
        self._cluster.shutdown()


def _day_bound(instant_ms: int) -> int:
    """The day of an instant, clamped to the int column (a window may reach any instant)."""
    return max(-(2**31), min(2**31 - 1, instant_ms // DAY_MS))


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
