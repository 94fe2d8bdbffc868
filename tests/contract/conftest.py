"""Every history store implementation, for the one contract suite.

SQLite always runs. Cassandra runs against CASSANDRA_CONTACT_POINTS when set
(a fresh keyspace per test), else in a testcontainers Cassandra when a Docker
engine answers, else it is skipped with the reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.ports import ExecutionHistory
from streams.views.history.sqlite import SqliteHistoryStore


def _docker_reason() -> str | None:
    """None when testcontainers can start a container here, else why not."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return "no Docker engine for testcontainers (no DOCKER_HOST, no /var/run/docker.sock)"
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env()
    except Exception as exc:
        return f"no Docker engine for testcontainers ({type(exc).__name__}: {exc})"
    try:
        client.ping()
    except Exception as exc:
        return f"the Docker engine does not answer ({type(exc).__name__})"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def cassandra_contact_points() -> Iterator[tuple[str, ...]]:
    configured = os.environ.get("CASSANDRA_CONTACT_POINTS", "").strip()
    if configured:
        yield tuple(p.strip() for p in configured.split(",") if p.strip())
        return
    reason = _docker_reason()
    if reason:
        pytest.skip(f"Cassandra suite skipped: CASSANDRA_CONTACT_POINTS is unset and {reason}")
    from testcontainers.cassandra import CassandraContainer

    with CassandraContainer("cassandra:4.1") as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(9042)
        yield (f"{host}:{port}",)


@pytest.fixture(params=["sqlite", "cassandra"])
def history(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExecutionHistory]:
    store: ExecutionHistory
    if request.param == "sqlite":
        store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    else:
        from streams.views.history.cassandra import CassandraHistoryStore

        points = request.getfixturevalue("cassandra_contact_points")
        store = CassandraHistoryStore(points, keyspace=f"kw_{uuid.uuid4().hex[:12]}")
    try:
        yield store
    finally:
        store.close()
