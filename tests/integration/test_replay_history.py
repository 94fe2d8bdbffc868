"""``kronwheel replay history`` rebuilds the history store from tasks.results:
into an empty store it reproduces the original history, and re-running it
(or running it over a store that has the window) adds nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.core.model import Outcome
from streams.kafka.topics import RESULTS
from streams.views.history import open_execution_history
from tests.integration.replaykit import (
    create_command,
    executions_by_task,
    iso,
    kronwheel,
    now_ms,
    produce_commands,
)
from tests.support.cassandra import drop_keyspace, fresh_keyspace
from tests.support.harness import CallbackSink, Pipeline, produce_records
from tests.support.waiting import wait_until

TASKS = 40


def test_replay_history_into_an_empty_store(
    settings: Settings, pipeline: Pipeline, tmp_path: Path
) -> None:
    pipeline.start_ready("processor", "dispatcher")
    original = open_execution_history(settings)
    start = now_ms()
    task_ids = [f"hist-{i}" for i in range(TASKS)]
    with CallbackSink() as sink:
        due_ms = start + 500
        produce_commands(
            settings,
            [create_command(t, due_ms + i * 5, sink.url, start) for i, t in enumerate(task_ids)],
        )
        wait_until(lambda: all(executions_by_task(original, task_ids).values()), 60, "every firing")
    history = executions_by_task(original, task_ids)
    assert all(runs[0].outcome is Outcome.SUCCEEDED for runs in history.values())

    produce_records(settings, settings.topic(RESULTS), [(b"hist-0", b"\x00 not avro")])

    # An empty store: a new data directory (SQLite), or a new keyspace (Cassandra).
    empty = replace(settings, data_dir=tmp_path / "rebuilt")
    if settings.cassandra_contact_points:
        keyspace = fresh_keyspace(settings.cassandra_contact_points, "kwempty")
        empty = replace(empty, cassandra_keyspace=keyspace)
    window = ["--from", iso(start - 1_000), "--to", "now"]
    rebuilt = kronwheel(empty, "replay", "history", *window, "--progress", "always")
    assert f"{TASKS} executions added, 0 already in the store, 1 malformed skipped" in (
        rebuilt.stdout
    )
    assert "rec/s" in rebuilt.stderr  # the progress bar shows a rate
    store = open_execution_history(empty)
    assert executions_by_task(store, task_ids) == history
    store.close()

    again = kronwheel(replace(empty, log_format="json"), "replay", "history", *window)
    assert f"0 executions added, {TASKS} already in the store" in again.stdout
    # KRONWHEEL_LOG_FORMAT=json: every log line (librdkafka's too) is one JSON object.
    lines = [json.loads(line) for line in again.stderr.splitlines() if line.strip()]
    assert lines
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    assert any("replay history over" in line["message"] for line in lines)
    [skipped] = [line for line in lines if "malformed" in line["message"]]
    assert skipped["topic"] == settings.topic(RESULTS)
    assert isinstance(skipped["partition"], int)
    assert isinstance(skipped["offset"], int)
    over_original = kronwheel(settings, "replay", "history", *window)
    assert f"0 executions added, {TASKS} already in the store" in over_original.stdout
    # Records outside the window are read past, never applied.
    before = kronwheel(empty, "replay", "history", "--from=-2h", "--to", iso(start - 1_000))
    assert "0 in the window" in before.stdout
    original.close()
    if settings.cassandra_contact_points:
        drop_keyspace(settings.cassandra_contact_points, empty.cassandra_keyspace)
