"""Topics, from the one spec in infra/topics.toml, created idempotently."""

from __future__ import annotations

import logging
import time
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

# The contract topic names live beside the settings, which compute their
# physical names once; they are re-exported here, where readers look for them.
from streams.config import COMMANDS as COMMANDS
from streams.config import DEAD as DEAD
from streams.config import DUE as DUE
from streams.config import RESULTS as RESULTS
from streams.config import STATE as STATE
from streams.config import Settings, kafka_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    co_partitioned: bool


def load_topic_specs(settings: Settings) -> list[TopicSpec]:
    raw: dict[str, Any] = tomllib.loads(
        resources.files("streams.infra").joinpath("topics.toml").read_text("utf-8")
    )
    defaults = raw["defaults"]
    partitions = defaults["partitions"] if settings.partitions is None else settings.partitions
    replication = settings.replication_factor
    if replication is None:
        replication = defaults["replication_factor"]
    specs = []
    for name, spec in raw["topics"].items():
        co_partitioned = bool(spec.get("co_partitioned", False))
        specs.append(
            TopicSpec(
                name=settings.topic(name),
                # Co-partitioned topics always follow the one count, so they can
                # never drift apart; the others may set their own.
                partitions=partitions if co_partitioned else spec.get("partitions", partitions),
                replication_factor=replication,
                config={k: str(v) for k, v in spec.get("config", {}).items()},
                co_partitioned=co_partitioned,
            )
        )
    return specs


def topic_partitions(settings: Settings, name: str) -> int:
    """How many partitions the spec gives contract topic ``name`` (``tasks.due``)."""
    physical = settings.topic(name)
    return next(spec.partitions for spec in load_topic_specs(settings) if spec.name == physical)


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create every missing topic; check the existing ones. Returns the names created.

    Safe to run from several processes at once: "already exists" is success.
    A co-partitioned topic with the wrong partition count is an error, because
    it would silently split a task's commands from its state.
    """
    admin = AdminClient(kafka_config(settings, "admin"))
    specs = load_topic_specs(settings)
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [s for s in specs if s.name not in existing]
    created: list[str] = []
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, s.replication_factor, config=s.config)
                for s in missing
            ],
            operation_timeout=timeout_s,
            request_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    metadata = _settled_metadata(admin, [s.name for s in specs], timeout_s)
    for spec in specs:
        actual = len(metadata[spec.name].partitions) if spec.name in metadata else 0
        if spec.co_partitioned and actual != spec.partitions:
            raise RuntimeError(
                f"topic {spec.name} has {actual} partitions, the spec says {spec.partitions}: "
                "tasks.commands, tasks.state and tasks.due must have the same count"
            )
    if created:
        log.info("created topics %s", ", ".join(created))
    return created


def _settled_metadata(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, Any]:
    """Topic metadata once every named topic shows its partitions with leaders.

    Apache Kafka answers CreateTopics before every broker knows the new topic:
    metadata read at once can show it with no partitions (or leaderless ones),
    which the partition-count check would take for a wrong count. The dev
    broker is settled at once; on Kafka this takes milliseconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        metadata: dict[str, Any] = admin.list_topics(timeout=timeout_s).topics
        pending = [
            name
            for name in names
            if name not in metadata
            or (
                not metadata[name].partitions
                or any(p.leader < 0 for p in metadata[name].partitions.values())
            )
        ]
        if not pending or time.monotonic() >= deadline:
            return metadata
        time.sleep(0.1)


def describe_topics(settings: Settings, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    admin = AdminClient(kafka_config(settings, "admin"))
    metadata = admin.list_topics(timeout=timeout_s).topics
    rows = []
    for spec in load_topic_specs(settings):
        topic = metadata.get(spec.name)
        rows.append(
            {
                "topic": spec.name,
                "exists": topic is not None,
                "partitions": len(topic.partitions) if topic else 0,
                "expected_partitions": spec.partitions,
                "cleanup.policy": spec.config.get("cleanup.policy", ""),
            }
        )
    return rows
