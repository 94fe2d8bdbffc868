"""Topics are created from infra/topics.toml, idempotently, on the real broker."""

from __future__ import annotations

from streams.config import Settings
from streams.topics import describe_topics, ensure_topics, load_topic_specs


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
