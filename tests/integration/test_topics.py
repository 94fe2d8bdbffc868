"""Topics are created from infra/topics.toml, idempotently, on the real broker."""

from __future__ import annotations

import os
import subprocess
import sys

from streams.config import Settings
from streams.kafka.topics import describe_topics, ensure_topics, load_topic_specs


def test_topics_are_created_once_and_co_partitioned(settings: Settings) -> None:
    created = ensure_topics(settings)
    expected = {spec.name for spec in load_topic_specs(settings)}
    assert set(created) == expected
    assert ensure_topics(settings) == []  # the second run creates nothing

    rows = {row["topic"]: row for row in describe_topics(settings)}
    assert all(row["exists"] for row in rows.values())
    co_partitioned = ["tasks.commands", "tasks.state", "tasks.due"]
    counts = {rows[settings.topic(name)]["partitions"] for name in co_partitioned}
    assert counts == {settings.partitions}
    assert rows[settings.topic("tasks.state")]["cleanup.policy"] == "compact"


def test_topics_command_line(settings: Settings) -> None:
    env = {**os.environ, **settings.to_env()}
    run = [sys.executable, "-m", "streams.cli", "topics"]
    created = subprocess.run([*run, "create"], env=env, capture_output=True, text=True, check=True)
    assert settings.topic("tasks.commands") in created.stdout
    again = subprocess.run([*run, "create"], env=env, capture_output=True, text=True, check=True)
    assert "nothing (all exist)" in again.stdout
    described = subprocess.run(
        [*run, "describe"], env=env, capture_output=True, text=True, check=True
    )
    assert f"{settings.topic('tasks.state')}" in described.stdout
    assert "compact" in described.stdout
