"""Every history store implementation, for the one contract suite.

SQLite always runs. Cassandra runs against CASSANDRA_CONTACT_POINTS when set
(a fresh keyspace per test), else in a testcontainers Cassandra when a Docker
engine answers, else it is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.ports import ExecutionHistory
from streams.views.history.sqlite import SqliteHistoryStore
from tests.support.cassandra import contact_points, drop_keyspace, fresh_keyspace


@pytest.fixture(scope="session")
def cassandra_contact_points() -> Iterator[tuple[str, ...]]:
    yield from contact_points()


@pytest.fixture(params=["sqlite", "cassandra"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExecutionHistory]:
    store: ExecutionHistory
    made: tuple[tuple[str, ...], str] | None = None
    if request.param == "sqlite":
        store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    else:
        from streams.views.history.cassandra import CassandraHistoryStore

        points = request.getfixturevalue("cassandra_contact_points")
        made = (points, fresh_keyspace(points, "kw"))
        store = CassandraHistoryStore(points, keyspace=made[1])
    try:
        yield store
    finally:
        store.close()
        if made is not None:
            drop_keyspace(*made)
