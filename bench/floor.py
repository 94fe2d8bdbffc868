"""A floor under ``kronwheel dev``'s CPU per task on this machine (issue 15's CPU row).

    python -m bench.floor [--tasks 20000] [--http-scale 1]

Issue 15 asks for at most 0.4 ms of CPU per task for all of ``kronwheel dev``
(every role and the broker) on its steady minute (one-time tasks, 1,667 due a
second, created through the REST API). This bench times the parts of that
work which every task must go through, on this machine and in one run. Each
part runs alone, with no Kafka and no waiting:

* the callback: the bare aiohttp client of ``bench compare`` (``bench.aps_baseline
  --bare``, its own process) sending the steady workload's calls at 1,667 a
  second to a loopback sink: CPU of that process per call;
* the Avro records of one task: the API encodes its create command; the
  processor decodes it and encodes its state and its firing; the dispatcher
  decodes the firing and encodes the result (``streams.kafka.records``);
* the dispatcher's history row: ``SqliteHistoryStore.record_executions``, in
  batches of 25 (about one dispatcher transaction);
* the API's read model: the projector's ``_project`` and the SQLite read
  model's ``apply`` over the task's command, state, tombstone and result,
  500 records a batch (as its consumer gets them under load);
* the keeper's kept log: ``KeptLog.store`` of the task's five records, in
  batches of 500.

These are today's codec and stores, each part as ``kronwheel dev`` runs it.
Everything else is left out, so the sum is a floor, not an estimate: the
broker, every Kafka client, the processor's wheel, state store and timers,
the API's HTTP handling and validation of creates, every event loop but the
bare client's, the keeper's prunes, metrics and logs. The bare client's and
the pure parts' numbers come from the same run; compare the sum with the
target, and with ``bench compare``'s kronwheel row run right after it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.compare import STEADY_PER_S, run_workload
from bench.systems import ApsBaseline
from streams.config import Settings
from streams.core.events import (
    CommandKind,
    DueTask,
    ExecutionResult,
    TaskCommand,
    TaskState,
    TaskStatus,
)
from streams.core.model import AtSchedule, HttpTarget, Outcome, RetryPolicy, TaskSpec
from streams.ingest import SCHEMA_HEADER
from streams.kafka.records import (
    decode_command,
    decode_due,
    encode_command,
    encode_due,
    encode_result,
    encode_state,
)
from streams.kafka.topics import COMMANDS, DUE, RESULTS, STATE
from streams.ops.durable import KeptLog, KeptRecord
from streams.views.history.sqlite import SqliteHistoryStore
from streams.views.readmodel.projector import Projector
from streams.views.readmodel.sqlite import SqliteReadModel
from tests.support.harness import CallbackSink

B = TypeVar("B")

TARGET_MS_PER_TASK = 0.4
T0 = 1_800_000_000_000
HISTORY_BATCH = 25
PROJECTOR_BATCH = 500
KEPT_BATCH = 500
# What the API puts on each command.
HEADERS: list[tuple[str, bytes | None]] = [SCHEMA_HEADER]


@dataclass(frozen=True)
class Record:
    """A consumed record as the projector sees one (confluent_kafka.Message's methods)."""

    topic_name: str
    part: int
    off: int
    key_bytes: bytes
    value_bytes: bytes | None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.topic_name

    def partition(self) -> int:
        return self.part

    def offset(self) -> int:
        return self.off

    def key(self) -> bytes:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def headers(self) -> None:
        return None


@dataclass(frozen=True)
class TaskEvents:
    """One task of the steady workload, as each role sees it."""

    command: TaskCommand
    state: TaskState
    due: DueTask
    result: ExecutionResult


def task_events(n: int, sink_url: str) -> TaskEvents:
    task_id = f"floor-{n:08d}"
    due_ms = T0 + n
    spec = TaskSpec(AtSchedule(due_ms), HttpTarget(f"{sink_url}/floor"), name=f"task {n}")
    command = TaskCommand(f"c-{n}", task_id, "acme", CommandKind.CREATE, T0, "acme/bench", spec)
    state = TaskState(
        task_id, "acme", spec, TaskStatus.SCHEDULED, due_ms, None, 0, T0, T0, command.command_id
    )
    fire_id = f"{task_id}:{due_ms}:1"
    due = DueTask(
        fire_id, task_id, "acme", spec.name, due_ms, 1, due_ms, spec.target, RetryPolicy()
    )
    result = ExecutionResult(
        fire_id, task_id, "acme", due_ms, 1, Outcome.SUCCEEDED, True, due_ms + 1, due_ms + 2, 1, 200
    )
    return TaskEvents(command, state, due, result)


def cpu_us_per_task(work: Callable[[], object], tasks: int) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / tasks * 1e6


def batches(items: Sequence[B], size: int) -> list[Sequence[B]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def codec_us(events: list[TaskEvents]) -> float:
    def work() -> None:
        for e in events:
            decode_command(encode_command(e.command))  # API, then the processor
            encode_state(e.state)  # the processor: the state
            decode_due(encode_due(e.due))  # the processor, then the dispatcher
            encode_result(e.result)  # the dispatcher

    return cpu_us_per_task(work, len(events))


def history_us(events: list[TaskEvents], directory: Path) -> float:
    store = SqliteHistoryStore(directory / "history.sqlite3")
    results = [e.result for e in events]
    try:

        def work() -> None:
            for batch in batches(results, HISTORY_BATCH):
                store.record_executions(batch)

        took = cpu_us_per_task(work, len(events))
        last = events[-1].result
        if store.executions(last.task_id) != [last]:
            raise RuntimeError("the history store did not keep the last task's row")
        return took
    finally:
        store.close()


def projector_records(events: list[TaskEvents], settings: Settings) -> list[Record]:
    """Each task's command, state, tombstone and result, in the order they arrive."""
    records = []
    for n, e in enumerate(events):
        key = e.command.task_id.encode()
        records += [
            Record(settings.topic(COMMANDS), 0, n, key, encode_command(e.command)),
            Record(settings.topic(STATE), 0, 2 * n, key, encode_state(e.state)),
            Record(settings.topic(STATE), 0, 2 * n + 1, key, None),
            Record(settings.topic(RESULTS), 0, n, key, encode_result(e.result)),
        ]
    return records


def read_model_us(events: list[TaskEvents], directory: Path) -> float:
    settings = Settings(data_dir=directory)
    model = SqliteReadModel(directory / "readmodel.sqlite3")
    projector = Projector(settings, model, shared=False)
    records = projector_records(events, settings)
    try:

        def work() -> None:
            for batch in batches(records, PROJECTOR_BATCH):
                model.apply(projector.name, projector._project(batch))

        took = cpu_us_per_task(work, len(events))
        shown = model.get_task("acme", events[-1].command.task_id)
        if shown is None or shown.status != "completed":
            raise RuntimeError(f"the read model shows the last task as {shown}")
        return took
    finally:
        model.close()


def kept_us(events: list[TaskEvents], directory: Path) -> float:
    settings = Settings(data_dir=directory)
    kept = KeptLog(directory / "kept.sqlite3", settings.topic(STATE))
    records = []
    for n, e in enumerate(events):
        key = e.command.task_id.encode()
        records += [
            KeptRecord(settings.topic(COMMANDS), 0, n, key, encode_command(e.command), HEADERS, T0),
            KeptRecord(settings.topic(STATE), 0, 2 * n, key, encode_state(e.state), None, T0),
            KeptRecord(settings.topic(DUE), 0, n, key, encode_due(e.due), None, T0),
            KeptRecord(settings.topic(STATE), 0, 2 * n + 1, key, None, None, T0),
            KeptRecord(settings.topic(RESULTS), 0, n, key, encode_result(e.result), None, T0),
        ]
    try:

        def work() -> None:
            for batch in batches(records, KEPT_BATCH):
                kept.store(batch, {})

        took = cpu_us_per_task(work, len(events))
        if sum(kept.counts().values()) != len(records):
            raise RuntimeError(f"the kept log holds {kept.counts()}, not {len(records)} records")
        return took
    finally:
        kept.close()


def http_us(scale: float) -> tuple[float, int, int]:
    """CPU per call of the bare client on the steady workload: (us, delivered, count)."""
    count = max(1, round(100_000 * scale))
    with tempfile.TemporaryDirectory() as work, CallbackSink() as sink:
        system = ApsBaseline(Path(work), bare=True)
        system.start()
        try:
            with system.sampler() as sampler:
                run_workload(system, sampler, sink, "warmup", 1, 0, 2_000, 120)
                result = run_workload(
                    system, sampler, sink, "steady", count, STEADY_PER_S, 10_000, 180
                )
        finally:
            system.stop()
    return float(result["cpu_ms_per_task"]) * 1000, int(result["delivered"]), count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks for the timed parts")
    parser.add_argument("--http-scale", type=float, default=1.0, help="of 100,000 callbacks")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    events = [task_events(n, "http://127.0.0.1:9") for n in range(args.tasks)]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        parts = [
            ("Avro records (API, processor, dispatcher)", codec_us(events)),
            ("history row (dispatcher, SQLite)", history_us(events, directory)),
            ("read model (API projector, SQLite)", read_model_us(events, directory)),
            ("kept log (keeper, SQLite)", kept_us(events, directory)),
        ]
    http, delivered, count = http_us(args.http_scale)
    parts.insert(0, (f"callback (bare aiohttp, {delivered:,}/{count:,} delivered)", http))
    total_ms = sum(us for _, us in parts) / 1000
    print(f"\nload average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.tasks:,} tasks")
    print(f"{'part, timed alone':<58} {'CPU us/task':>12}")
    for name, us in parts:
        print(f"{name:<58} {us:>12.1f}")
    print(f"{'floor (sum)':<58} {total_ms * 1000:>12.1f}")
    print(f"{'issue 15 target, all of kronwheel dev':<58} {TARGET_MS_PER_TASK * 1000:>12.1f}")
    print(f"floor / target: {total_ms / TARGET_MS_PER_TASK:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
