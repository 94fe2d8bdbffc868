"""Shared read model (Cassandra in production): however many API instances run, each
record is projected once, by the projectors' consumer group, and every instance's live
hub still sees every event."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from streams.config import Settings, kafka_config
from streams.core.events import TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.kafka.records import encode_state
from streams.kafka.topics import COMMANDS, DEAD, RESULTS, STATE, ensure_topics
from streams.ports import Projection
from streams.views.readmodel.projector import Projector
from streams.views.readmodel.sqlite import SqliteReadModel
from tests.support.harness import produce_records

pytestmark = pytest.mark.integration

SPEC = TaskSpec(AtSchedule(9_000_000_000_000), HttpTarget("https://example.com/x"), name="g")


class CountingStore(SqliteReadModel):
    """The one shared read model, counting which projector wrote which task."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.writes: list[str] = []
        self._count_lock = threading.Lock()

    def apply(self, projector: str, batch: Projection) -> None:
        with self._count_lock:
            self.writes.extend(task_id for task_id, _ in batch.states)
        super().apply(projector, batch)


def remember(into: set[str], batch: Projection) -> None:
    into.update(task_id for task_id, _ in batch.states)


def partition_count(settings: Settings) -> int:
    admin = AdminClient(kafka_config(settings, "test-admin"))
    topics = admin.list_topics(timeout=10).topics
    return sum(len(topics[settings.topic(n)].partitions) for n in (STATE, RESULTS, COMMANDS, DEAD))


def wait_for(condition: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_instances_project_each_record_once_and_both_see_every_event(
    settings: Settings, tmp_path: Path
) -> None:
    ensure_topics(settings)
    store = CountingStore(tmp_path / "shared-rm.sqlite3")
    seen: dict[str, set[str]] = {"a": set(), "b": set()}
    projectors = [
        Projector(
            replace(settings, slot=slot),
            store,
            on_batch=partial(remember, seen[slot]),
            shared=True,
        ).start()
        for slot in ("a", "b")
    ]
    try:
        wait_for(
            lambda: (
                all(p.status.partitions > 0 for p in projectors)
                and sum(p.status.partitions for p in projectors) == partition_count(settings)
            ),
            90,
            "the group to share every partition between both",
        )
        ids = [f"task-{i}" for i in range(300)]
        states = [
            (
                task_id.encode(),
                encode_state(
                    TaskState(task_id, "acme", SPEC, TaskStatus.SCHEDULED, None, None, 0, 1, 1, "c")
                ),
            )
            for task_id in ids
        ]
        produce_records(settings, settings.topic(STATE), states)
        wait_for(lambda: set(store.writes) >= set(ids), 60, "every state to be projected")
        wait_for(lambda: seen["a"] >= set(ids) and seen["b"] >= set(ids), 30, "live events")
        time.sleep(1.0)  # anything projected twice would show up by now
        assert sorted(store.writes) == sorted(ids), "each record written exactly once"
        assert all(store.get_task("acme", t) is not None for t in ids[:5])
    finally:
        for projector in projectors:
            projector.stop()
        store.close()
