"""Whole-pipeline scenarios: ``kronwheel bench steady|burst|capacity``.

* steady: the seeds' top scale, 100,000 firings per minute of mixed tasks
  (one-time tasks created as the run goes, cron every 10 s, intervals every
  30 s) for several minutes: Avro create -> wheel -> dispatcher -> local
  HTTP sink -> history + results. Target on a 2-core machine: p99
  (callback received - scheduled) <= 250 ms.
* burst: 100,000 one-time tasks due in the same second: time to drain and
  the lateness distribution.
* capacity: 10,000,000 pending tasks in one processor: RSS and restore time
  (``bench.processor capacity``).

Each prints a table against the raw broker measured in the same run and
writes .artifacts/bench/<scenario>.json and .png. ``--scale`` shrinks a run
(0.1 = a tenth of the tasks) for a quick look.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from bench.common import bench_settings
from bench.e2e_latency import raw_broker_latency
from bench.report import latency_summary, print_table, write
from streams.config import Settings
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    Schedule,
    TaskSpec,
)
from streams.core.timefmt import parse_rfc3339_ms
from streams.kafka.records import decode_due
from streams.kafka.topics import COMMANDS, DUE, ensure_topics
from streams.views.history import open_execution_history
from tests.support.harness import (
    Callback,
    CallbackSink,
    Pipeline,
    create_record,
    produce_records,
    read_topic,
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def command(task_id: str, schedule: Schedule, url: str) -> tuple[bytes, bytes]:
    spec = TaskSpec(schedule, HttpTarget(url, timeout_ms=5_000))
    return create_record(task_id, spec, tenant="bench", issuer="bench")


@dataclass
class Run:
    settings: Settings
    pipeline: Pipeline
    sink: CallbackSink
    extra: dict[str, Any] = field(default_factory=dict)


def start(stack: ExitStack, processors: int, dispatchers: int) -> Run:
    settings, work = bench_settings(stack)
    ensure_topics(settings)
    pipeline = Pipeline(settings, work / "logs")
    stack.callback(pipeline.stop_all)
    sink = stack.enter_context(CallbackSink())
    roles = [pipeline.start("processor") for _ in range(processors)]
    roles += [pipeline.start("dispatcher") for _ in range(dispatchers)]
    for role in roles:
        pipeline.wait_for_log(role, "assigned [", timeout_s=120)
    return Run(settings, pipeline, sink)


def lateness_of(callbacks: list[Callback], since_ms: int, until_ms: int) -> list[float]:
    """First delivery per firing, scheduled inside [since, until)."""
    seen: set[str] = set()
    samples: list[float] = []
    for callback in callbacks:
        key = callback.headers.get("Idempotency-Key", "")
        if key in seen:
            continue
        seen.add(key)
        scheduled = parse_rfc3339_ms(callback.headers["Kronwheel-Scheduled-At"])
        if since_ms <= scheduled < until_ms:
            samples.append(callback.received_ms - scheduled)
    return samples


def duplicates(callbacks: list[Callback]) -> int:
    keys = [c.headers.get("Idempotency-Key", "") for c in callbacks]
    return len(keys) - len(set(keys))


# --- steady ------------------------------------------------------------------------


def steady(run: Run, minutes: float, per_minute: int) -> dict[str, Any]:
    url = run.sink.url
    per_s = per_minute / 60
    once_per_s = per_s / 2  # half one-time tasks, created as the run goes
    cron_tasks = round(per_s / 4 * 10)  # a quarter from cron, each every 10 s
    interval_tasks = round(per_s / 4 * 30)  # a quarter from intervals, each every 30 s
    warmup_ms = 40_000
    begin = now_ms() + warmup_ms
    end = begin + int(minutes * 60_000)
    recurring: list[tuple[bytes, bytes]] = []
    for n in range(cron_tasks):
        recurring.append(
            command(f"cron-{n}-{uuid.uuid4().hex[:6]}", CronSchedule("*/10 * * * * *"), url)
        )
    for n in range(interval_tasks):
        start_ms = begin - 30_000 + (n * 30_000) // max(interval_tasks, 1)
        schedule = IntervalSchedule(30_000, start_ms=start_ms, end_ms=end)
        recurring.append(command(f"every-{n}-{uuid.uuid4().hex[:6]}", schedule, url))
    produce_records(run.settings, run.settings.topic(COMMANDS), recurring)
    produced = 0
    with tqdm(total=round((end - now_ms()) / 1000), unit="s", desc="steady") as bar:
        started = now_ms()
        last = started
        while (now := now_ms()) < end:
            due = int((now - started) / 1000 * once_per_s) - produced
            if due > 0:
                batch = [
                    command(
                        f"once-{produced + i}-{uuid.uuid4().hex[:6]}", AtSchedule(now + 5_000), url
                    )
                    for i in range(due)
                ]
                produce_records(run.settings, run.settings.topic(COMMANDS), batch)
                produced += due
            if now - last >= 1000:
                bar.update((now - last) // 1000)
                last += (now - last) // 1000 * 1000
            received = len(run.sink.callbacks)
            bar.set_postfix(callbacks=f"{received:,}", refresh=False)
            time.sleep(0.1)
    time.sleep(10)  # let the last firings of the window arrive
    callbacks = run.sink.received()
    samples = lateness_of(callbacks, begin, end)
    return {
        "stages_ms": stages(run.settings, begin, end),
        "scenario": "steady",
        "minutes": minutes,
        "firings_per_minute_target": per_minute,
        "mix": {
            "one_time_per_s": once_per_s,
            "cron_tasks": cron_tasks,
            "interval_tasks": interval_tasks,
        },
        "measured_window_ms": [begin, end],
        "callbacks_in_window": len(samples),
        "firings_per_minute_measured": len(samples) / minutes,
        "duplicate_deliveries": duplicates(callbacks),
        "lateness_ms": latency_summary(samples),
        "_samples": samples,
        "_arrivals": [c.received_ms for c in callbacks if begin <= c.received_ms < end + 10_000],
    }


def stages(settings: Settings, begin: int, end: int) -> dict[str, dict[str, float]]:
    """Where the lateness builds up: due event emitted by the processor, target call
    started by a dispatcher (both minus scheduled), for firings scheduled in the window."""
    emitted = [
        due.emitted_at_ms - due.scheduled_at_ms
        for due in (
            decode_due(value)
            for _, value, _ in read_topic(settings, settings.topic(DUE))
            if value is not None
        )
        if begin <= due.scheduled_at_ms < end
    ]
    history = open_execution_history(settings)
    try:
        started = [
            r.started_at_ms - r.scheduled_at_ms
            for r in history.executions_between(begin, end, limit=10_000_000)
        ]
    finally:
        history.close()
    return {
        "processor_emitted": latency_summary(emitted),
        "dispatcher_started": latency_summary(started),
    }


# --- burst -------------------------------------------------------------------------


def burst(run: Run, tasks: int) -> dict[str, Any]:
    url = run.sink.url
    lead_ms = 20_000 + tasks // 5  # room to create them all before they fall due
    due_at = now_ms() + lead_ms
    records = [
        command(f"burst-{n}-{uuid.uuid4().hex[:6]}", AtSchedule(due_at + n % 1000), url)
        for n in range(tasks)
    ]
    produce_records(run.settings, run.settings.topic(COMMANDS), records)
    deadline = due_at + 600_000
    with tqdm(total=tasks, desc="burst", unit="callback") as bar:
        seen = 0
        while seen < tasks and now_ms() < deadline:
            time.sleep(0.5)
            current = len({c.headers.get("Idempotency-Key") for c in run.sink.received()})
            bar.update(current - seen)
            seen = current
    callbacks = run.sink.received()
    samples = lateness_of(callbacks, due_at, due_at + 1_000)
    last = max((c.received_ms for c in callbacks), default=due_at)
    history = open_execution_history(run.settings)
    try:
        recorded = len(history.executions_between(due_at, due_at + 1_000, limit=tasks * 2))
    finally:
        history.close()
    return {
        "scenario": "burst",
        "tasks_due_in_one_second": tasks,
        "callbacks": len(samples),
        "drain_s": (last - due_at) / 1000,
        "drain_rate_per_s": len(samples) / max((last - due_at) / 1000, 0.001),
        "recorded_in_history": recorded,
        "duplicate_deliveries": duplicates(callbacks),
        "lateness_ms": latency_summary(samples),
        "_samples": samples,
        "_arrivals": [c.received_ms for c in callbacks],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kronwheel bench", description=__doc__)
    parser.add_argument("scenario", choices=["steady", "burst", "capacity"])
    parser.add_argument("--minutes", type=float, default=3.0, help="steady: measured minutes")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("--processors", type=int, default=1)
    parser.add_argument("--dispatchers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.scenario == "capacity":
        from bench.processor import main as processor_main

        sys.argv = ["bench.processor", "capacity", "--tasks", str(int(10_000_000 * args.scale))]
        processor_main()
        return 0
    with ExitStack() as stack:
        run = start(stack, args.processors, args.dispatchers)
        raw = latency_summary(raw_broker_latency(run.settings, 200, 10))
        if args.scenario == "steady":
            summary = steady(run, args.minutes, int(100_000 * args.scale))
        else:
            summary = burst(run, int(100_000 * args.scale))
    samples, arrivals = summary.pop("_samples"), summary.pop("_arrivals")
    summary["raw_broker_ms"] = raw
    summary["roles"] = {"processors": args.processors, "dispatchers": args.dispatchers}
    print()
    print_table(summary, raw)
    for stage, numbers in summary.get("stages_ms", {}).items():
        print(f"{stage} - scheduled: p50 {numbers['p50']:.0f} ms, p99 {numbers['p99']:.0f} ms")
    for key in (
        "drain_s",
        "drain_rate_per_s",
        "firings_per_minute_measured",
        "duplicate_deliveries",
    ):
        if key in summary:
            print(
                f"{key}: {summary[key]:,.1f}"
                if isinstance(summary[key], float)
                else f"{key}: {summary[key]:,}"
            )
    json_path, png_path = write(summary["scenario"], summary, samples, arrivals)
    print(f"wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
