"""``kronwheel replay state`` rebuilds the changelog tasks.state from tasks.commands
(and moves tasks past what tasks.due says already fired); processors then
restore every pending task from it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

from confluent_kafka.admin import AdminClient

from streams.config import Settings, kafka_config
from streams.core.events import CommandKind, DueTask, TaskCommand, TaskState, TaskStatus
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, IntervalSchedule, RetryPolicy, TaskSpec
from streams.kafka.records import decode_state, encode_due, encode_state
from streams.kafka.topics import COMMANDS, DEAD, DUE, STATE, ensure_topics
from streams.ops.procs import stop
from tests.integration.replaykit import (
    create_command,
    kronwheel,
    now_ms,
    produce_commands,
)
from tests.support.harness import CallbackSink, Pipeline, produce_records, read_topic
from tests.support.waiting import wait_until

HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def changelog(settings: Settings) -> dict[str, TaskState | None]:
    """The latest changelog record per key (what compaction would keep)."""
    latest: dict[str, TaskState | None] = {}
    for key, value, _ in read_topic(settings, settings.topic(STATE), idle_s=1.0):
        latest[(key or b"").decode()] = decode_state(value) if value is not None else None
    return latest


def produce_keyed(settings: Settings, topic: str, records: list[tuple[str, bytes]]) -> None:
    produce_records(settings, settings.topic(topic), ((k.encode(), v) for k, v in records))


def test_replay_state_rebuilds_the_changelog(settings: Settings) -> None:
    ensure_topics(settings)
    start = now_ms()
    url = "http://127.0.0.1:9/hook"
    every = IntervalSchedule(MINUTE_MS, start_ms=start - 10_000)
    cancel = TaskCommand("cancel-c", "task-c", "ops", CommandKind.CANCEL, start, "replay-test")
    # A command in the ghost's partition (below), older than the ghost claims to be.
    cancel_ghost = replace(cancel, command_id="cancel-ghost", task_id="ghost")
    pause = TaskCommand("pause-b", "task-b", "ops", CommandKind.PAUSE, start, "replay-test")
    recurring = replace(
        create_command("task-e", 0, url, start),
        spec=TaskSpec(every, HttpTarget(url), name="every-minute"),
    )
    produce_commands(
        settings,
        [
            create_command("task-a", start + HOUR_MS, url, start),
            create_command("task-b", start + 2 * HOUR_MS, url, start),
            create_command("task-c", start + HOUR_MS, url, start),
            cancel,
            pause,
            create_command("task-d", start - 5_000, url, start),  # fired already, below
            recurring,
            cancel_ghost,
        ],
    )
    first_e = start - 10_000 + MINUTE_MS

    def fired(task_id: str, scheduled_ms: int) -> tuple[str, bytes]:
        due = DueTask(
            fire_id(task_id, scheduled_ms, 1),
            task_id,
            "ops",
            task_id,
            scheduled_ms,
            1,
            scheduled_ms,
            HttpTarget(url),
            RetryPolicy(),
        )
        return task_id, encode_due(due)

    produce_keyed(
        settings,
        DUE,
        [
            fired("task-d", start - 5_000),
            fired("task-e", first_e),
            fired("task-e", first_e + MINUTE_MS),
        ],
    )
    # A key no command created, claiming a creation after the oldest command of
    # its partition (a corrupted changelog), must be tombstoned; a task created
    # before every command kept (tasks.commands has a retention) must be kept.
    created = now_ms()
    ghost = TaskState(
        "ghost",
        "ops",
        TaskSpec(every, HttpTarget(url)),
        TaskStatus.SCHEDULED,
        created + HOUR_MS,
        None,
        0,
        created,
        created,
    )
    old = replace(ghost, task_id="old-task", created_at_ms=start - 30 * 24 * HOUR_MS)
    produce_keyed(
        settings, STATE, [("ghost", encode_state(ghost)), ("old-task", encode_state(old))]
    )

    dry = kronwheel(settings, "replay", "state", "--dry-run")
    assert "3 live tasks" in dry.stdout
    assert set(changelog(settings)) == {"ghost", "old-task"}  # a dry run writes nothing

    done = kronwheel(settings, "replay", "state", "--progress", "always")
    assert "3 live tasks (2 moved past runs already fired)" in done.stdout
    assert "1 stale changelog keys tombstoned, 1 tasks older than" in done.stdout
    rebuilt = changelog(settings)
    assert rebuilt["ghost"] is None
    assert rebuilt["old-task"] == old
    assert "task-c" not in rebuilt
    assert "task-d" not in rebuilt
    live = {k: v for k, v in rebuilt.items() if v is not None}
    assert {k: v.next_fire_ms for k, v in live.items() if k != "old-task"} == {
        "task-a": start + HOUR_MS,
        "task-b": start + 2 * HOUR_MS,
        "task-e": first_e + 2 * MINUTE_MS,
    }
    assert live["task-e"].fire_count == 2

    kronwheel(settings, "replay", "state")  # idempotent: the same records again
    assert changelog(settings) == rebuilt

    produce_keyed(settings, DEAD, [("task-x", b"a dead letter")])
    status = kronwheel(settings, "status").stdout
    pending = status.split("pending tasks")[1].split("dead letters")[0].strip()
    # scheduled (task-a, task-e, old-task), paused (task-b)
    assert pending.splitlines()[-1].split() == ["total", "3", "1", "0", "4"]
    assert status.strip().splitlines()[-1].split() == [settings.topic(DEAD), "1"]
    assert f"{settings.topic(COMMANDS)}" in status  # the processors' lag rows


def test_processors_restore_every_pending_task_after_replay_state(
    settings: Settings, pipeline: Pipeline
) -> None:
    roles = pipeline.start_ready("processor", "dispatcher")
    tasks = [f"pending-{i}" for i in range(20)]
    with CallbackSink() as sink:
        due_ms = now_ms() + 8_000
        produce_commands(
            settings,
            [create_command(t, due_ms + i, sink.url, now_ms()) for i, t in enumerate(tasks)],
        )
        wait_until(
            lambda: sum(v is not None for v in changelog(settings).values()) == len(tasks),
            30,
            "the processor's changelog",
        )
        refused = kronwheel_fails(settings, "replay", "state")
        assert "stop them first" in refused

        stop(roles["processor"].process)
        admin = AdminClient(kafka_config(settings, "admin"))
        for future in admin.delete_topics([settings.topic(STATE)]).values():
            future.result()
        ensure_topics(settings)
        assert changelog(settings) == {}

        restored = kronwheel(settings, "replay", "state")
        assert f"{len(tasks)} live tasks" in restored.stdout
        pipeline.wait_for_log(
            pipeline.start("processor", slot=roles["processor"].slot), "assigned ["
        )
        callbacks = sink.wait_for(len(tasks), timeout_s=(due_ms - now_ms()) / 1000 + 20)
    assert sorted(c.headers["Kronwheel-Task-Id"] for c in callbacks) == sorted(tasks)


def kronwheel_fails(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr
