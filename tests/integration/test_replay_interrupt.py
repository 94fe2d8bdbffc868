"""A replay stopped with Ctrl-C leaves nothing half-done, and running it again
finishes the job: the store ends with exactly the topic's outcomes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.core.events import ExecutionResult
from streams.core.ids import fire_id
from streams.core.model import Outcome
from streams.kafka.records import encode_result
from streams.kafka.topics import RESULTS, ensure_topics
from streams.ops.procs import spawn, stop
from tests.integration.replaykit import kronwheel, now_ms
from tests.support.harness import produce_records
from tests.support.waiting import wait_until

# Enough that the replay is still running when the test sees its first rows.
RESULTS_COUNT = 100_000


def stored(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0])
        except sqlite3.OperationalError:  # the table is not created yet
            return 0


def test_an_interrupted_replay_finishes_when_run_again(settings: Settings) -> None:
    # Counts rows in the SQLite file as the replay writes: SQLite whatever the environment.
    settings = replace(settings, cassandra_contact_points=())
    ensure_topics(settings)
    start = now_ms()

    def result(i: int) -> tuple[bytes, bytes]:
        task = f"bulk-{i % 1000}"
        at = start + i
        outcome = ExecutionResult(
            fire_id(task, at, 1), task, "ops", at, 1, Outcome.SUCCEEDED, True, at, at + 2, 0, 200
        )
        return task.encode(), encode_result(outcome)

    produce_records(settings, settings.topic(RESULTS), map(result, range(RESULTS_COUNT)))

    db = settings.history_db_path
    # A child inherits an ignored SIGINT, and a shell without job control starts
    # background jobs (a test run among them) with SIGINT ignored: the replay
    # would then never see the Ctrl-C. A handler here becomes the default in the
    # child, as a terminal would give it.
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        replay = spawn(
            [sys.executable, "-m", "streams.cli", "replay", "history", "--from=-1h"],
            env={**os.environ, **settings.to_env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    finally:
        signal.signal(signal.SIGINT, outer)
    try:
        wait_until(lambda: stored(db) > 0 or replay.poll() is not None, 60, "the first rows")
        # Frozen first, so the interrupt lands mid-replay however fast the rest goes.
        os.kill(replay.pid, signal.SIGSTOP)
        frozen_at = stored(db)
        assert replay.poll() is None, "the replay ended before the test could interrupt it"
        assert frozen_at < RESULTS_COUNT, "the replay had written everything when frozen"
        os.kill(replay.pid, signal.SIGINT)
        os.kill(replay.pid, signal.SIGCONT)
        out, _ = replay.communicate(timeout=30)
    finally:
        stop(replay)
    assert replay.returncode == 130, out
    assert b"run the same command again" in out
    partial = stored(db)
    assert 0 < partial < RESULTS_COUNT

    again = kronwheel(settings, "replay", "history", "--from=-1h")
    added = RESULTS_COUNT - partial
    assert f"{added} executions added, {partial} already in the store" in again.stdout
    assert stored(db) == RESULTS_COUNT
