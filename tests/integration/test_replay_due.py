"""Target outage: every firing fails while the target is down; after it is back,
``kronwheel replay due --status failed`` re-drives the window and every firing
ends succeeded exactly once in the history store."""

from __future__ import annotations

from confluent_kafka import Producer

from streams.config import Settings, producer_config
from streams.core.events import DueTask
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy
from streams.kafka.records import encode_due
from streams.kafka.topics import DUE
from streams.views.history import open_execution_history
from tests.integration.replaykit import (
    create_command,
    executions_by_task,
    iso,
    kronwheel,
    now_ms,
    produce_commands,
)
from tests.support.harness import Callback, CallbackSink, Pipeline
from tests.support.waiting import wait_until

TASKS = 30


def test_target_outage_then_replay_due(settings: Settings, pipeline: Pipeline) -> None:
    pipeline.start_ready("processor", "dispatcher")
    store = open_execution_history(settings)
    window_start = now_ms()
    task_ids = [f"outage-{i}" for i in range(TASKS)]
    with CallbackSink(status=503) as sink:
        due_ms = now_ms() + 500
        produce_commands(
            settings,
            [
                create_command(t, due_ms + i * 10, sink.url, window_start)
                for i, t in enumerate(task_ids)
            ],
        )

        def outcomes() -> dict[str, list[tuple[int, Outcome]]]:
            runs = executions_by_task(store, task_ids)
            return {t: sorted((r.attempt, r.outcome) for r in rs) for t, rs in runs.items()}

        wait_until(lambda: all(outcomes().values()), 60, "every firing to fail")
        assert all(o == [(1, Outcome.FAILED)] for o in outcomes().values())

        sink.status = 200  # the target is back
        window = ["--from", iso(window_start), "--to", "now"]
        dry = kronwheel(settings, "replay", "due", *window, "--status", "failed", "--dry-run")
        assert dry.stdout.count("next-attempt") == TASKS
        assert "nothing sent" in dry.stdout
        one = kronwheel(
            settings,
            "replay",
            "due",
            *window,
            "--status",
            "failed",
            "--task",
            task_ids[0],
            "--dry-run",
        )
        assert one.stdout.count("next-attempt") == 1
        assert f"{task_ids[0]}:{due_ms}:2" in one.stdout

        replay = kronwheel(settings, "replay", "due", *window, "--status", "failed")
        assert f"{TASKS} produced" in replay.stdout
        wait_until(
            lambda: all(len(o) == 2 for o in outcomes().values()), 60, "the re-driven firings"
        )
        # A second run finds nothing left to do: replays are safe to repeat.
        again = kronwheel(settings, "replay", "due", *window, "--status", "failed")
        assert "0 firings to re-drive" in again.stdout
        # Without --status every firing goes out again with its fire id, and the
        # dispatcher drops each as already recorded. A fresh marker firing behind
        # them on every partition shows when it has read past them all.
        resent = kronwheel(settings, "replay", "due", *window)
        assert f"{2 * TASKS} produced" in resent.stdout
        produce_markers(settings, sink.url + "/marker")
        wait_until(
            lambda: len(markers(sink.received())) == settings_partitions(settings),
            30,
            "the marker firings",
        )
        callbacks = [c for c in sink.received() if not c.path.endswith("/marker")]
    assert len(callbacks) == 2 * TASKS
    final = outcomes()
    for task_id in task_ids:
        assert final[task_id] == [(1, Outcome.FAILED), (2, Outcome.SUCCEEDED)], task_id
    succeeded = [c for c in callbacks if c.headers["Kronwheel-Attempt"] == "2"]
    assert sorted(c.headers["Kronwheel-Task-Id"] for c in succeeded) == sorted(task_ids)
    store.close()


def settings_partitions(settings: Settings) -> int:
    return settings.partitions or 1


def markers(callbacks: list[Callback]) -> list[Callback]:
    return [c for c in callbacks if c.path.endswith("/marker")]


def produce_markers(settings: Settings, url: str) -> None:
    """One fresh firing at the end of every tasks.due partition."""
    producer = Producer(producer_config(settings, "test"))
    now = now_ms()
    for partition in range(settings_partitions(settings)):
        task = f"marker-{partition}"
        due = DueTask(
            fire_id(task, now, 1), task, "ops", task, now, 1, now, HttpTarget(url), RetryPolicy()
        )
        producer.produce(
            settings.topic(DUE), encode_due(due), key=task.encode(), partition=partition
        )
    assert producer.flush(10) == 0
