"""History store writes and duplicate-check lookups per CPU-second (this thread's time,
steadier than wall time on a shared machine), against raw SQLite in the same run.

    python -m bench.history [--rows 20000] [--batch 200]

Baseline: ``executemany`` INSERTs of the same rows into a bare table with the
same pragmas (WAL, synchronous=NORMAL), one transaction per batch. Then the
SQLite store as it was (one ``execute`` per row, kept here as the "before"),
the SQLite store (idempotent upserts, read-model update, indexes) and, when
CASSANDRA_CONTACT_POINTS is set, the Cassandra store (LWT per fire id plus the
query tables), both writing the same batches through ``record_executions``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bench.common import table
from streams.core.events import ExecutionResult
from streams.core.model import Outcome
from streams.ports import DueSource, ExecutionHistory
from streams.views.history.rows import result_values
from streams.views.history.sqlite import _INSERT_EXECUTION, SqliteHistoryStore

BASE_MS = 1_800_000_000_000


def rows(count: int) -> list[ExecutionResult]:
    return [
        ExecutionResult(
            f"task-{i % 1000}:{BASE_MS + i}:1",
            f"task-{i % 1000}",
            "bench",
            BASE_MS + i,
            1,
            Outcome.SUCCEEDED,
            True,
            BASE_MS + i + 3,
            BASE_MS + i + 9,
            3,
            200,
            None,
            "bench",
        )
        for i in range(count)
    ]


def raw_sqlite(path: Path, results: list[ExecutionResult], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE executions (fire_id TEXT PRIMARY KEY, task_id TEXT, scheduled INTEGER, "
        "outcome TEXT, started INTEGER, finished INTEGER)"
    )
    started = time.thread_time()
    for start in range(0, len(results), batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    r.fire_id,
                    r.task_id,
                    r.scheduled_at_ms,
                    r.outcome.value,
                    r.started_at_ms,
                    r.finished_at_ms,
                )
                for r in results[start : start + batch]
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.thread_time() - started
    conn.close()
    return len(results) / elapsed


class RowByRowSqliteStore(SqliteHistoryStore):
    """The store's write before executemany: one statement per row (the baseline)."""

    def record_executions(
        self,
        results: Sequence[ExecutionResult],
        sources: Mapping[str, DueSource] | None = None,
        contended: bool = True,
    ) -> int:
        sources = sources or {}
        inserted = 0
        with self._transaction() as conn:
            for r in results:
                source = sources.get(r.fire_id)
                values = (
                    *result_values(r),
                    None if source is None else source.partition,
                    None if source is None else source.offset,
                )
                inserted += conn.execute(_INSERT_EXECUTION, values).rowcount == 1
        return inserted


def store_rates(
    store: ExecutionHistory, results: list[ExecutionResult], batch: int
) -> tuple[float, float]:
    started = time.thread_time()
    for start in range(0, len(results), batch):
        chunk = results[start : start + batch]
        store.record_executions(chunk, {r.fire_id: DueSource(0, i) for i, r in enumerate(chunk)})
    writes = len(results) / (time.thread_time() - started)
    ids = [r.fire_id for r in results]
    started = time.thread_time()
    for start in range(0, len(ids), batch):
        store.recorded(ids[start : start + batch])
    lookups = len(ids) / (time.thread_time() - started)
    return writes, lookups


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    results = rows(args.rows)
    stores: list[tuple[str, Callable[[], ExecutionHistory]]] = []
    with tempfile.TemporaryDirectory() as work:
        raw = raw_sqlite(Path(work) / "raw.sqlite3", results, args.batch)
        stores.append(
            ("SQLite store, execute per row", lambda: RowByRowSqliteStore(Path(work) / "r.sqlite3"))
        )
        stores.append(("SQLite store", lambda: SqliteHistoryStore(Path(work) / "h.sqlite3")))
        points = os.environ.get("CASSANDRA_CONTACT_POINTS", "").strip()
        if points:
            from streams.views.history.cassandra import CassandraHistoryStore

            keyspace = f"bench_{uuid.uuid4().hex[:8]}"
            stores.append(
                ("Cassandra store", lambda: CassandraHistoryStore(points.split(","), keyspace))
            )
        table_rows: list[list[object]] = [["raw sqlite3 executemany", raw, "-", 1.0]]
        for name, opener in stores:
            store = opener()
            try:
                writes, lookups = store_rates(store, results, args.batch)
            finally:
                store.close()
            table_rows.append([name, writes, lookups, writes / raw])
    print(f"{args.rows} execution rows in batches of {args.batch}")
    print(table(["store", "writes/s", "lookups/s", "writes / raw"], table_rows))
    if not points:
        print("Cassandra: not measured (CASSANDRA_CONTACT_POINTS is unset)")


if __name__ == "__main__":
    main()
