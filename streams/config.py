"""One frozen settings object, read from the environment once.

Secrets (the admin token, the signing secret) are kept out of ``repr`` so a
settings object can be logged. Every librdkafka key is set in
:func:`kafka_config`, in one place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_API_PORT = 8080


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str | None = None
    topic_prefix: str = ""
    partitions: int | None = None
    replication_factor: int | None = None
    data_dir: Path = Path(".kronwheel")
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    api_token: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    target_allowlist: tuple[str, ...] = ()
    cassandra_contact_points: tuple[str, ...] = ()
    # Group membership: a dead member's partitions move after this. The dev
    # broker also holds joins for about half of it, so dev and tests use less.
    session_timeout_ms: int = 10_000
    # End-to-end latency follows this on brokers that do not answer a waiting
    # fetch early (the dev broker); 50 ms keeps p99 well under target.
    fetch_wait_max_ms: int = 50
    linger_ms: int = 5
    dispatch_concurrency: int = 256
    # The processor keeps timers due within this horizon in memory; the rest
    # wait in its on-disk index. Runs later than the grace are misfires.
    wheel_horizon_ms: int = 60_000
    misfire_grace_ms: int = 10_000
    # Per target host: calls at once, and calls per second (0 = no rate limit).
    dispatch_per_host_concurrency: int = 32
    dispatch_per_host_rate: int = 0
    cassandra_keyspace: str = "kronwheel"
    # Cassandra rows expire after this (0 = kept forever).
    history_ttl_s: int = 0
    # Where a role serves /metrics, /healthz and /readyz (0 = an ephemeral port).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # A stable name for this process's place in its group ("processor-0"): it
    # becomes the transactional.id, so a restarted process fences its dead
    # predecessor at once. Two live processes of a role must never share one.
    slot: str = field(default_factory=lambda: os.uname().nodename)
    # "text" for people, "json" (one object per line) for log shippers.
    log_format: str = "text"
    instance_id: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        base = cls()

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def number(name: str, default: int | None) -> int | None:
            value = text(name)
            return int(value) if value is not None else default

        def items(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in (text(name) or "").split(",") if p.strip())

        return cls(
            bootstrap_servers=text("KAFKA_BOOTSTRAP_SERVERS"),
            topic_prefix=text("KRONWHEEL_TOPIC_PREFIX") or "",
            partitions=number("KRONWHEEL_PARTITIONS", None),
            replication_factor=number("KRONWHEEL_REPLICATION_FACTOR", None),
            data_dir=Path(text("KRONWHEEL_DATA_DIR") or base.data_dir),
            api_host=text("KRONWHEEL_API_HOST") or base.api_host,
            api_port=number("KRONWHEEL_API_PORT", base.api_port) or base.api_port,
            api_token=text("KRONWHEEL_API_TOKEN"),
            signing_secret=text("KRONWHEEL_SIGNING_SECRET"),
            target_allowlist=items("KRONWHEEL_TARGET_ALLOWLIST"),
            cassandra_contact_points=items("CASSANDRA_CONTACT_POINTS"),
            session_timeout_ms=number("KRONWHEEL_SESSION_TIMEOUT_MS", base.session_timeout_ms)
            or base.session_timeout_ms,
            fetch_wait_max_ms=number("KRONWHEEL_FETCH_WAIT_MAX_MS", base.fetch_wait_max_ms)
            or base.fetch_wait_max_ms,
            linger_ms=number("KRONWHEEL_LINGER_MS", base.linger_ms) or 0,
            dispatch_concurrency=number("KRONWHEEL_DISPATCH_CONCURRENCY", base.dispatch_concurrency)
            or base.dispatch_concurrency,
            wheel_horizon_ms=number("KRONWHEEL_WHEEL_HORIZON_MS", base.wheel_horizon_ms)
            or base.wheel_horizon_ms,
            misfire_grace_ms=number("KRONWHEEL_MISFIRE_GRACE_MS", base.misfire_grace_ms)
            or base.misfire_grace_ms,
            dispatch_per_host_concurrency=number(
                "KRONWHEEL_DISPATCH_PER_HOST_CONCURRENCY", base.dispatch_per_host_concurrency
            )
            or base.dispatch_per_host_concurrency,
            dispatch_per_host_rate=number(
                "KRONWHEEL_DISPATCH_PER_HOST_RATE", base.dispatch_per_host_rate
            )
            or 0,
            cassandra_keyspace=text("KRONWHEEL_CASSANDRA_KEYSPACE") or base.cassandra_keyspace,
            history_ttl_s=number("KRONWHEEL_HISTORY_TTL_S", base.history_ttl_s) or 0,
            metrics_host=text("KRONWHEEL_METRICS_HOST") or base.metrics_host,
            metrics_port=number("KRONWHEEL_METRICS_PORT", None),
            slot=text("KRONWHEEL_SLOT") or base.slot,
            log_format=(text("KRONWHEEL_LOG_FORMAT") or base.log_format).lower(),
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` in a child process see these settings."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers or "",
            "KRONWHEEL_TOPIC_PREFIX": self.topic_prefix,
            "KRONWHEEL_DATA_DIR": str(self.data_dir),
            "KRONWHEEL_API_HOST": self.api_host,
            "KRONWHEEL_API_PORT": str(self.api_port),
            "KRONWHEEL_TARGET_ALLOWLIST": ",".join(self.target_allowlist),
            "CASSANDRA_CONTACT_POINTS": ",".join(self.cassandra_contact_points),
            "KRONWHEEL_SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
            "KRONWHEEL_FETCH_WAIT_MAX_MS": str(self.fetch_wait_max_ms),
            "KRONWHEEL_LINGER_MS": str(self.linger_ms),
            "KRONWHEEL_DISPATCH_CONCURRENCY": str(self.dispatch_concurrency),
            "KRONWHEEL_WHEEL_HORIZON_MS": str(self.wheel_horizon_ms),
            "KRONWHEEL_MISFIRE_GRACE_MS": str(self.misfire_grace_ms),
            "KRONWHEEL_DISPATCH_PER_HOST_CONCURRENCY": str(self.dispatch_per_host_concurrency),
            "KRONWHEEL_DISPATCH_PER_HOST_RATE": str(self.dispatch_per_host_rate),
            "KRONWHEEL_CASSANDRA_KEYSPACE": self.cassandra_keyspace,
            "KRONWHEEL_HISTORY_TTL_S": str(self.history_ttl_s),
            "KRONWHEEL_METRICS_HOST": self.metrics_host,
            "KRONWHEEL_SLOT": self.slot,
            "KRONWHEEL_LOG_FORMAT": self.log_format,
        }
        optional = {
            "KRONWHEEL_PARTITIONS": self.partitions,
            "KRONWHEEL_REPLICATION_FACTOR": self.replication_factor,
            "KRONWHEEL_API_TOKEN": self.api_token,
            "KRONWHEEL_SIGNING_SECRET": self.signing_secret,
            "KRONWHEEL_METRICS_PORT": self.metrics_port,
        }
        env.update({name: str(value) for name, value in optional.items() if value is not None})
        return env

    def with_bootstrap(self, bootstrap_servers: str) -> Settings:
        return replace(self, bootstrap_servers=bootstrap_servers)

    def topic(self, name: str) -> str:
        """The physical name of a contract topic (``tasks.due`` -> prefix + name)."""
        return f"{self.topic_prefix}{name}"

    @property
    def history_db_path(self) -> Path:
        return self.data_dir / "history.sqlite3"


def kafka_config(settings: Settings, role: str, **overrides: Any) -> dict[str, Any]:
    """librdkafka configuration shared by every client of a role.

    Production settings stay on in dev (acks=all, idempotence): the dev broker
    supports them, and code that only ever ran without them is untested code.
    """
    if not settings.bootstrap_servers:
        raise ValueError("KAFKA_BOOTSTRAP_SERVERS is not set and no embedded broker is running")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"kronwheel-{role}-{settings.instance_id}",
        # librdkafka's own log lines go through Python logging (served on poll), so
        # they share the role's format: one JSON object per line with
        # KRONWHEEL_LOG_FORMAT=json, instead of raw "%3|...|FAIL|" lines on stderr.
        "logger": logging.getLogger("librdkafka"),
    }
    config.update(overrides)
    return config


def producer_config(settings: Settings, role: str, **overrides: Any) -> dict[str, Any]:
    return kafka_config(
        settings,
        role,
        **{
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": settings.linger_ms,
            "compression.type": "lz4",
            # The Java client's partitioner: a task id lands on the same
            # partition whichever client produced its command.
            "partitioner": "murmur2_random",
            **overrides,
        },
    )


def consumer_config(
    settings: Settings, role: str, group_id: str, **overrides: Any
) -> dict[str, Any]:
    return kafka_config(
        settings,
        role,
        **{
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(500, settings.session_timeout_ms // 5),
            "fetch.wait.max.ms": settings.fetch_wait_max_ms,
            "partition.assignment.strategy": "cooperative-sticky",
            **overrides,
        },
    )
