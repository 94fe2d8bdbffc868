"""One frozen settings object, read from the environment once.

The dataclass below is the one table of settings: each field declares its
type and default, and :func:`_setting` adds the environment variable and a
line of help. :meth:`Settings.from_env` and :meth:`Settings.to_env` are both
driven by that table, so a setting cannot be read without being passed on to
the children of ``kronwheel dev`` (or the other way round).

An unset or empty variable means the default; anything else is parsed, and a
value that does not parse (or is out of range) stops the process with a
message naming the variable. An explicit ``0`` is a value, never "unset".

Secrets (the admin token, the signing secret) are kept out of ``repr`` so a
settings object can be logged. Every librdkafka key is set in
:func:`kafka_config`, in one place.
"""

from __future__ import annotations

import logging
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_type_hints

DEFAULT_API_PORT = 8080
LOG_FORMATS = ("text", "json")
MEMBERSHIP_CHOICES = ("auto", "on", "off")
ASSIGNMENT_CHOICES = ("group", "static")

# The contract topics. Their physical names (prefix + name) are computed once,
# when a Settings object is built; see Settings.topics.
COMMANDS = "tasks.commands"
STATE = "tasks.state"
DUE = "tasks.due"
RESULTS = "tasks.results"
DEAD = "tasks.dead"
CONTRACT_TOPICS = (COMMANDS, STATE, DUE, RESULTS, DEAD)


class InvalidSetting(ValueError):
    """A variable's value does not fit its setting; the message names the variable."""


def _setting(
    env: str,
    default: Any,
    help: str,
    *,
    minimum: int | None = None,
    choices: tuple[str, ...] = (),
    secret: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A field of the settings table: its variable, help and checks ride in the metadata."""
    metadata = {"env": env, "help": help, "minimum": minimum, "choices": choices}
    if default_factory is not None:
        return field(default_factory=default_factory, repr=not secret, metadata=metadata)
    return field(default=default, repr=not secret, metadata=metadata)


def _nodename() -> str:
    return os.uname().nodename


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str | None = _setting(
        "KAFKA_BOOTSTRAP_SERVERS", None, "Kafka brokers, host:port,...; unset in dev = embedded"
    )
    topic_prefix: str = _setting("KRONWHEEL_TOPIC_PREFIX", "", "prefix of every topic name")
    partitions: int | None = _setting(
        "KRONWHEEL_PARTITIONS",
        None,
        "partitions of new topics (default: infra/topics.toml)",
        minimum=1,
    )
    replication_factor: int | None = _setting(
        "KRONWHEEL_REPLICATION_FACTOR",
        None,
        "replication of new topics (default: topics.toml)",
        minimum=1,
    )
    # _setting returns a dataclass field, so nothing is shared between instances.
    data_dir: Path = _setting(  # noqa: RUF009
        "KRONWHEEL_DATA_DIR", Path(".kronwheel"), "local state: indexes, SQLite history"
    )
    api_host: str = _setting("KRONWHEEL_API_HOST", "127.0.0.1", "address the API listens on")
    api_port: int = _setting(
        "KRONWHEEL_API_PORT", DEFAULT_API_PORT, "port the API listens on", minimum=0
    )
    api_token: str | None = _setting(
        "KRONWHEEL_API_TOKEN", None, "the admin token (tenant default)", secret=True
    )
    signing_secret: str | None = _setting(
        "KRONWHEEL_SIGNING_SECRET", None, "HMAC secret for signing webhook calls", secret=True
    )
    target_allowlist: tuple[str, ...] = _setting(
        "KRONWHEEL_TARGET_ALLOWLIST", (), "hosts/CIDRs targets may reach despite the SSRF guard"
    )
    cassandra_contact_points: tuple[str, ...] = _setting(
        "CASSANDRA_CONTACT_POINTS", (), "Cassandra hosts; unset = SQLite views"
    )
    # Static group membership (group.instance.id from the group and the slot): a
    # process restarted in its slot gets its partitions back without a rebalance,
    # but a member that stops does not leave either, so its partitions move only
    # after session_timeout_ms (a scale-down waits that long). "auto" is on, except
    # with the embedded dev broker, which holds static joins and still rebalances
    # (whoever starts one resolves "auto" to "off": Settings.with_embedded_broker).
    static_membership: str = _setting(
        "KRONWHEEL_STATIC_MEMBERSHIP",
        "auto",
        "group.instance.id per slot: auto (off on the embedded broker), on, off",
        choices=MEMBERSHIP_CHOICES,
    )
    # How the processor and the dispatcher get their partitions: from the broker's
    # group coordinator, or "static": member index of count takes p % count == index
    # with no coordinator (only safe when one supervisor starts every member and
    # owns the broker: kronwheel dev; streams.kafka.assignment says why).
    assignment: str = _setting(
        "KRONWHEEL_ASSIGNMENT", "group", "group or static (dev)", choices=ASSIGNMENT_CHOICES
    )
    member_index: int | None = _setting(
        "KRONWHEEL_MEMBER_INDEX", None, "static assignment: this member's index", minimum=0
    )
    member_count: int | None = _setting(
        "KRONWHEEL_MEMBER_COUNT", None, "static assignment: members of the role", minimum=1
    )
    # Group membership: a dead member's partitions move after this. The dev
    # broker also holds joins for about half of it, so dev and tests use less.
    session_timeout_ms: int = _setting(
        "KRONWHEEL_SESSION_TIMEOUT_MS", 10_000, "consumer group session timeout", minimum=1
    )
    # End-to-end latency follows this on brokers that do not answer a waiting
    # fetch early (the dev broker); 50 ms keeps p99 well under target.
    fetch_wait_max_ms: int = _setting(
        "KRONWHEEL_FETCH_WAIT_MAX_MS", 50, "longest a fetch waits for data", minimum=0
    )
    linger_ms: int = _setting("KRONWHEEL_LINGER_MS", 5, "producer batching delay", minimum=0)
    dispatch_concurrency: int = _setting(
        "KRONWHEEL_DISPATCH_CONCURRENCY", 256, "target calls in flight per dispatcher", minimum=1
    )
    # The processor keeps timers due within this horizon in memory; the rest
    # wait in its on-disk index. Runs later than the grace are misfires.
    wheel_horizon_ms: int = _setting(
        "KRONWHEEL_WHEEL_HORIZON_MS", 60_000, "timers due within this sit in memory", minimum=1
    )
    misfire_grace_ms: int = _setting(
        "KRONWHEEL_MISFIRE_GRACE_MS", 10_000, "a firing later than this is a misfire", minimum=0
    )
    # Per target host: calls at once, and calls per second (0 = no rate limit).
    dispatch_per_host_concurrency: int = _setting(
        "KRONWHEEL_DISPATCH_PER_HOST_CONCURRENCY", 32, "calls at once per target host", minimum=1
    )
    dispatch_per_host_rate: int = _setting(
        "KRONWHEEL_DISPATCH_PER_HOST_RATE", 0, "calls/s per target host, 0 = no limit", minimum=0
    )
    # How many dispatcher processes `kronwheel dev` runs (unset: see dev_dispatchers()).
    dev_dispatchers: int | None = _setting(
        "KRONWHEEL_DEV_DISPATCHERS",
        None,
        "dispatchers kronwheel dev runs; unset = one per core, at least 2",
        minimum=1,
    )
    cassandra_keyspace: str = _setting(
        "KRONWHEEL_CASSANDRA_KEYSPACE", "kronwheel", "Cassandra keyspace"
    )
    # Cassandra rows expire after this (0 = kept forever).
    history_ttl_s: int = _setting(
        "KRONWHEEL_HISTORY_TTL_S", 0, "Cassandra row TTL, 0 = forever", minimum=0
    )
    # Where a role serves /metrics, /healthz and /readyz (0 = an ephemeral port).
    metrics_host: str = _setting(
        "KRONWHEEL_METRICS_HOST", "127.0.0.1", "address of a role's ops server"
    )
    metrics_port: int | None = _setting(
        "KRONWHEEL_METRICS_PORT", None, "port of a role's ops server (0 = any)", minimum=0
    )
    # A stable name for this process's place in its group ("processor-0"): it
    # becomes the transactional.id, so a restarted process fences its dead
    # predecessor at once. Two live processes of a role must never share one.
    slot: str = _setting(
        "KRONWHEEL_SLOT",
        None,
        "stable name of this process in its group",
        default_factory=_nodename,
    )
    # "text" for people, "json" (one object per line) for log shippers.
    log_format: str = _setting("KRONWHEEL_LOG_FORMAT", "text", "text or json", choices=LOG_FORMATS)
    # Not a setting but this process's identity (client ids): never passed on
    # to a child, and not part of equality, so settings round-trip between processes.
    instance_id: str = field(
        default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}", compare=False
    )
    # Physical topic names, computed once from the prefix (see __post_init__).
    topics: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = {name: f"{self.topic_prefix}{name}" for name in CONTRACT_TOPICS}
        object.__setattr__(self, "topics", types.MappingProxyType(names))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; raises InvalidSetting naming a bad variable."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for item, kind in _table():
            raw = env.get(item.metadata["env"], "").strip()
            if raw:
                values[item.name] = _parse(item, kind, raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes ``from_env`` in a child process see these settings.

        A setting at None is left out (its absence is what None means)."""
        env: dict[str, str] = {}
        for item, _kind in _table():
            value = getattr(self, item.name)
            if value is not None:
                env[item.metadata["env"]] = _format(value)
        return env

    @staticmethod
    def env_name(name: str) -> str:
        """The variable of a setting (``"slot"`` -> ``KRONWHEEL_SLOT``)."""
        return str(next(item.metadata["env"] for item, _ in _table() if item.name == name))

    def with_bootstrap(self, bootstrap_servers: str) -> Settings:
        return replace(self, bootstrap_servers=bootstrap_servers)

    def with_embedded_broker(self, bootstrap_servers: str) -> Settings:
        """These settings on the embedded dev broker: ``auto`` membership becomes
        ``off`` (passed on to child processes as such), since that broker holds
        a static member's join for seconds and rebalances anyway."""
        membership = "off" if self.static_membership == "auto" else self.static_membership
        return replace(self, bootstrap_servers=bootstrap_servers, static_membership=membership)

    def topic(self, name: str) -> str:
        """The physical name of a topic (``tasks.due`` -> prefix + name)."""
        try:
            return self.topics[name]
        except KeyError:
            # Topics outside the contract (a benchmark's scratch topic) get the prefix too.
            return f"{self.topic_prefix}{name}"

    @property
    def history_db_path(self) -> Path:
        return self.data_dir / "history.sqlite3"


def settings_help() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, in table order (for docs and --help)."""
    rows = []
    for item, _kind in _table():
        if item.default_factory is not MISSING:
            default = "(per host)"
        else:
            default = "" if item.default is None else _format(item.default)
        rows.append((item.metadata["env"], default, item.metadata["help"]))
    return rows


@cache
def _table() -> tuple[tuple[Field[Any], type], ...]:
    """Every field that is a setting, with its value type (None stripped from optionals)."""
    hints = get_type_hints(Settings)
    rows = []
    for item in fields(Settings):
        if "env" not in item.metadata:
            continue
        kind = hints[item.name]
        options = [arg for arg in get_args(kind) if arg is not type(None)]
        if options and kind.__class__ is types.UnionType:
            kind = options[0]
        rows.append((item, kind))
    return tuple(rows)


def _parse(item: Field[Any], kind: Any, raw: str) -> Any:
    env = item.metadata["env"]
    if kind is int:
        try:
            number = int(raw)
        except ValueError:
            raise InvalidSetting(f"{env}={raw!r}: expected a whole number") from None
        minimum = item.metadata["minimum"]
        if minimum is not None and number < minimum:
            raise InvalidSetting(f"{env}={raw!r}: must be at least {minimum}")
        return number
    if kind is Path:
        return Path(raw)
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    choices = item.metadata["choices"]
    if choices and raw.lower() not in choices:
        raise InvalidSetting(f"{env}={raw!r}: must be one of {', '.join(choices)}")
    return raw.lower() if choices else raw


def _format(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


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


def group_membership(settings: Settings, group_id: str) -> dict[str, Any]:
    """The group.instance.id of this slot's member of ``group_id`` when membership is
    static (see ``Settings.static_membership``), else nothing. Only for a role's
    one group consumer: two live members with one id fence each other."""
    if settings.static_membership == "off" or settings.assignment == "static":
        return {}
    # Kafka takes at most 249 of [a-zA-Z0-9._-] here (a group id may hold more).
    instance = re.sub(r"[^a-zA-Z0-9._-]", "_", f"{group_id}-{settings.slot}")[:249]
    return {"group.instance.id": instance}


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
