"""Replay throughput: each ``kronwheel replay`` against a bare scan of the same topic,
measured in the same run.

    python -m bench.replay [--n 50000]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker. Fills
tasks.results, tasks.due and tasks.commands with n records each (every firing
failed once), then times: a bare windowed scan (the baseline: read, check
timestamps), ``replay history`` into an empty SQLite store, ``replay due
--status failed`` (scan, decode, look up outcomes, produce the next attempts)
and ``replay state`` (fold commands, read firings and the changelog, write it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from confluent_kafka import Producer

from bench.common import table
from streams.config import Settings, producer_config
from streams.core.events import CommandKind, DueTask, ExecutionResult, TaskCommand
from streams.core.ids import fire_id
from streams.core.model import AtSchedule, HttpTarget, Outcome, RetryPolicy, TaskSpec
from streams.kafka.broker import EmbeddedBroker
from streams.kafka.records import encode_command, encode_due, encode_result
from streams.kafka.topics import COMMANDS, DUE, RESULTS, ensure_topics
from streams.ops.replay.due import replay_due
from streams.ops.replay.history import replay_history
from streams.ops.replay.scan import ScanStats, scan_window
from streams.ops.replay.state import replay_state
from streams.ops.replay.window import Window
from streams.views.history.sqlite import SqliteHistoryStore


def fill(settings: Settings, n: int, base_ms: int) -> None:
    producer = Producer(producer_config(settings, "bench", **{"linger.ms": 20}))
    target = HttpTarget("https://example.com/hook")
    for i in range(n):
        task = f"bench-{i:07d}"
        at = base_ms + 3_600_000 + i
        records = [
            (
                COMMANDS,
                encode_command(
                    TaskCommand(
                        f"c-{i}",
                        task,
                        "acme",
                        CommandKind.CREATE,
                        base_ms,
                        "bench",
                        TaskSpec(AtSchedule(at + 3_600_000), target),
                    )
                ),
            ),
            (
                DUE,
                encode_due(
                    DueTask(
                        fire_id(task, at, 1), task, "acme", task, at, 1, at, target, RetryPolicy()
                    )
                ),
            ),
            (
                RESULTS,
                encode_result(
                    ExecutionResult(
                        fire_id(task, at, 1),
                        task,
                        "acme",
                        at,
                        1,
                        Outcome.FAILED,
                        True,
                        at,
                        at + 3,
                        0,
                        503,
                        "HTTP 503",
                    )
                ),
            ),
        ]
        for topic, value in records:
            while True:
                try:
                    producer.produce(settings.topic(topic), value=value, key=task.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
    assert producer.flush(60) == 0


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    n = parser.parse_args().n
    with ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if not bootstrap:
            bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = replace(
            Settings(),
            bootstrap_servers=bootstrap,
            topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
            partitions=6,
            data_dir=data,
        )
        ensure_topics(settings)
        base_ms = time.time_ns() // 1_000_000
        fill(settings, n, base_ms)
        window = Window(base_ms - 60_000, None)

        def bare_scan() -> None:
            stats = ScanStats()
            for _ in scan_window(settings, settings.topic(RESULTS), window, stats, progress=False):
                pass
            assert stats.in_window == n, stats.summary()

        store = SqliteHistoryStore(settings.history_db_path)
        now = time.time_ns() // 1_000_000
        rows = [
            ("bare scan of tasks.results (baseline)", n, timed(bare_scan)),
            (
                "replay history (empty SQLite store)",
                n,
                timed(lambda: replay_history(settings, store, window, progress=False)),
            ),
            (
                "replay due --status failed",
                n,
                timed(
                    lambda: replay_due(
                        settings, store, window, now, only_failed=True, progress=False
                    )
                ),
            ),
            (
                "replay state (commands + due + changelog)",
                n,
                timed(lambda: replay_state(settings, force=True, progress=False)),
            ),
        ]
        store.close()
    baseline = rows[0][1] / rows[0][2]
    print(
        table(
            ["step", "records", "seconds", "records/s", "vs bare scan"],
            [
                (name, count, secs, count / secs, (count / secs) / baseline)
                for name, count, secs in rows
            ],
        )
    )


if __name__ == "__main__":
    main()
