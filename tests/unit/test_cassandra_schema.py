"""The Cassandra CQL files as the stores apply them (no Cassandra needed for this part;
the stores themselves are tested by tests/contract/ and tests/unit/test_readmodel.py
against a real Cassandra when CASSANDRA_CONTACT_POINTS is set)."""

from __future__ import annotations

from streams.views.cassandra_schema import (
    HISTORY_FILE,
    KEYSPACE_FILE,
    READMODEL_FILE,
    statements,
)
from streams.views.history.cassandra import (
    DAY_SHARDS,
    day_shard,
    first_wins_timestamp,
    split_contact_points,
)


def test_history_tables_use_the_configured_keyspace_and_never_create_it() -> None:
    found = statements(HISTORY_FILE, "kw_prod")
    tables = [s.split("(")[0].split()[-1] for s in found]
    assert tables == [
        "kw_prod.executions_by_fire_id",
        "kw_prod.executions_by_task",
        "kw_prod.task_buckets",
        "kw_prod.executions_by_day",
        "kw_prod.fire_ids_by_partition",
        "kw_prod.partition_hours",
    ]
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in found)
    assert not any("kronwheel" in s for s in found)


def test_read_model_tables_never_create_the_keyspace() -> None:
    found = statements(READMODEL_FILE, "rm_x")
    assert found
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS rm_x.") for s in found)


def test_the_operator_keyspace_uses_network_topology() -> None:
    (keyspace,) = statements(KEYSPACE_FILE, "kronwheel")
    assert keyspace.startswith("CREATE KEYSPACE IF NOT EXISTS kronwheel")
    assert "NetworkTopologyStrategy" in keyspace
    assert "SimpleStrategy" not in keyspace


def test_an_earlier_recording_has_the_greater_write_timestamp() -> None:
    assert first_wins_timestamp(1_000) > first_wins_timestamp(2_000) > 0
    # A century of microseconds from now still leaves it positive.
    assert first_wins_timestamp(5_000_000_000_000_000) > 0


def test_contact_points_with_and_without_port() -> None:
    assert split_contact_points(["10.0.0.1", "10.0.0.2"]) == (["10.0.0.1", "10.0.0.2"], 9042)
    assert split_contact_points(["db1:19042", "db2:19042"]) == (["db1", "db2"], 19042)


def test_day_shards_spread_tasks() -> None:
    shards = {day_shard(f"task-{i}") for i in range(200)}
    assert shards == set(range(DAY_SHARDS))
