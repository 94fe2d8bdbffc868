"""History writes on a real Cassandra, against raw driver writes of the same rows.

    CASSANDRA_CONTACT_POINTS=host[:port] python -m bench.history_cassandra [--rows 20000]

Every line writes the same rows in the same batches with the same concurrency
(``execute_concurrent_with_args``, 64 in flight):

* raw INSERT: a prepared plain INSERT of the row into a bare table: the floor;
* raw INSERT IF NOT EXISTS: the same with a lightweight transaction, what one
  outcome per fire id used to cost (Paxos: about four round trips);
* the store, uncontended: ``record_executions(..., contended=False)``: the
  fire-id row plus the query tables (by task, task buckets, by day, by
  partition, partition hours), each a plain first-recording-wins upsert;
* the store, contended: the same plus reading the fire ids back (the
  dispatcher does this only for partitions it was given moments ago).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

from bench.common import table
from bench.history import rows
from streams.ports import DueSource
from streams.views.history.cassandra import CassandraHistoryStore, split_contact_points
from streams.views.history.rows import RESULT_COLUMNS, result_values
from tests.support.cassandra import contact_points, fresh_keyspace

CONCURRENCY = 64


def raw_rate(session: Any, keyspace: str, results: list[Any], batch: int, lwt: bool) -> float:
    from cassandra.concurrent import execute_concurrent_with_args

    table_name = f"{keyspace}.raw_{'lwt' if lwt else 'plain'}"
    columns = ", ".join(RESULT_COLUMNS)
    # Same column types as executions_by_fire_id: copy its definition.
    session.execute(
        f"CREATE TABLE {table_name} (fire_id text PRIMARY KEY, task_id text, tenant text, "
        "scheduled_at_ms bigint, attempt int, outcome text, final boolean, started_at_ms bigint, "
        "finished_at_ms bigint, lateness_ms bigint, http_status int, error text, dispatcher text)",
        timeout=60.0,
    )
    marks = ", ".join("?" * len(RESULT_COLUMNS))
    statement = session.prepare(
        f"INSERT INTO {table_name} ({columns}) VALUES ({marks})" + (" IF NOT EXISTS" if lwt else "")
    )
    started = time.perf_counter()
    for start in range(0, len(results), batch):
        execute_concurrent_with_args(
            session,
            statement,
            [result_values(r) for r in results[start : start + batch]],
            concurrency=CONCURRENCY,
        )
    return len(results) / (time.perf_counter() - started)


def store_rate(
    store: CassandraHistoryStore, results: list[Any], batch: int, contended: bool
) -> float:
    started = time.perf_counter()
    for start in range(0, len(results), batch):
        chunk = results[start : start + batch]
        store.record_executions(
            chunk, {r.fire_id: DueSource(0, i) for i, r in enumerate(chunk)}, contended=contended
        )
    return len(results) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    points = next(contact_points(), ())
    if not points:
        raise SystemExit("set CASSANDRA_CONTACT_POINTS")
    from cassandra.cluster import Cluster

    keyspace = fresh_keyspace(points, "bench")
    hosts, port = split_contact_points(points)
    cluster = Cluster(hosts, port=port)
    session = cluster.connect()
    data = rows(args.rows)
    # Each store run writes fresh fire ids (a redo would measure the no-op path).
    uncontended = [replace(r, fire_id=f"u{r.fire_id}") for r in data]
    try:
        plain = raw_rate(session, keyspace, data, args.batch, lwt=False)
        lwt = raw_rate(session, keyspace, data, args.batch, lwt=True)
        store = CassandraHistoryStore(points, keyspace)
        try:
            fast = store_rate(store, uncontended, args.batch, contended=False)
            checked = store_rate(store, data, args.batch, contended=True)
        finally:
            store.close()
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60.0)
        cluster.shutdown()
    print(f"{args.rows} execution rows in batches of {args.batch}, {CONCURRENCY} in flight")
    print(
        table(
            ["writer", "rows/s", "/ raw INSERT"],
            [
                ["raw INSERT (baseline)", plain, 1.0],
                ["raw INSERT IF NOT EXISTS", lwt, lwt / plain],
                ["store, uncontended (1 write per table)", fast, fast / plain],
                ["store, contended (writes + read back)", checked, checked / plain],
            ],
        )
    )


if __name__ == "__main__":
    main()
