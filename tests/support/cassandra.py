"""Cassandra for the tests: contact points from the environment, a fresh keyspace per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from streams.views.history.cassandra import split_contact_points


def configured_points() -> tuple[str, ...]:
    """CASSANDRA_CONTACT_POINTS as a tuple; empty when unset."""
    configured = os.environ.get("CASSANDRA_CONTACT_POINTS", "")
    return tuple(p.strip() for p in configured.split(",") if p.strip())


def contact_points() -> Iterator[tuple[str, ...]]:
    """For a session fixture: CASSANDRA_CONTACT_POINTS when set, else a testcontainers
    Cassandra when a Docker engine answers, else the test is skipped saying why."""
    configured = configured_points()
    if configured:
        yield configured
        return
    reason = docker_reason()
    if reason:
        pytest.skip(f"Cassandra tier skipped: CASSANDRA_CONTACT_POINTS is unset and {reason}")
    from testcontainers.cassandra import CassandraContainer

    with CassandraContainer("cassandra:4.1") as container:
        host = container.get_container_host_ip()
        yield (f"{host}:{container.get_exposed_port(9042)}",)


def fresh_keyspace(points: tuple[str, ...], prefix: str) -> str:
    """Create a one-replica keyspace in the node's own datacenter, as an operator would
    (kronwheel never creates one itself), and return its name."""
    from cassandra.cluster import Cluster

    hosts, port = split_contact_points(points)
    cluster = Cluster(hosts, port=port)
    try:
        session: Any = cluster.connect()
        datacenter = session.execute("SELECT data_center FROM system.local").one().data_center
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        session.execute(
            f"CREATE KEYSPACE {name} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{datacenter}': 1}}",
            timeout=60.0,
        )
        return name
    finally:
        cluster.shutdown()


def docker_reason() -> str | None:
    """None when testcontainers can start a container here, else why not."""
    from pathlib import Path

    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return "no Docker engine for testcontainers (no DOCKER_HOST, no /var/run/docker.sock)"
    import docker  # type: ignore[import-untyped]

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        return f"the Docker engine does not answer ({type(exc).__name__}: {exc})"
    client.close()
    return None


def drop_keyspace(points: tuple[str, ...], name: str) -> None:
    """Drop a keyspace a test made: a node holding hundreds of test keyspaces runs out
    of heap (seen here: 141 keyspaces, 866 tables on a 1 GB heap)."""
    from cassandra.cluster import Cluster

    hosts, port = split_contact_points(points)
    cluster = Cluster(hosts, port=port)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60.0)
    finally:
        cluster.shutdown()
