"""The Cassandra schema file as the store applies it (no Cassandra needed for this part;
the store itself is tested by tests/contract/ against a real Cassandra)."""

from __future__ import annotations

from streams.views.history.cassandra import (
    DAY_SHARDS,
    day_shard,
    schema_statements,
    split_contact_points,
)


def test_schema_statements_use_the_configured_keyspace() -> None:
    statements = schema_statements("kw_prod")
    assert statements[0].startswith("CREATE KEYSPACE IF NOT EXISTS kw_prod")
    tables = [s.split("(")[0].split()[-1] for s in statements[1:]]
    assert tables == [
        "kw_prod.executions_by_fire_id",
        "kw_prod.executions_by_task",
        "kw_prod.task_buckets",
        "kw_prod.executions_by_day",
        "kw_prod.fire_ids_by_partition",
    ]
    assert all("IF NOT EXISTS" in s for s in statements)
    assert not any("kronwheel" in s for s in statements)


def test_contact_points_with_and_without_port() -> None:
    assert split_contact_points(["10.0.0.1", "10.0.0.2"]) == (["10.0.0.1", "10.0.0.2"], 9042)
    assert split_contact_points(["db1:19042", "db2:19042"]) == (["db1", "db2"], 19042)


def test_day_shards_spread_tasks() -> None:
    shards = {day_shard(f"task-{i}") for i in range(200)}
    assert shards == set(range(DAY_SHARDS))
