"""Micro-benchmarks of the processor's per-task steps, to confirm or refute a cost
before changing it (issue 15):

    python -m bench.processor_costs

Each line is the mean of many calls in one process, in microseconds; compare
two commits on the same machine in the same minute (note the load average).
"""

from __future__ import annotations

import os
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from streams.core.cron import validate_cron
from streams.core.events import TaskState, TaskStatus
from streams.core.lifecycle import fire, next_due_ms
from streams.core.model import AtSchedule, CronSchedule, HttpTarget, Schedule, TaskSpec
from streams.core.validation import DEFAULT_LIMITS, check_url
from streams.kafka.records import decode_state, encode_state
from streams.wheel.statestore import PartitionStore

T0 = 1_800_000_000_000
URL = "https://hooks.example.com/kronwheel/callback?tenant=acme&kind=report"


def mean_us(call: Callable[[], object], number: int = 20_000) -> float:
    return timeit.timeit(call, number=number) / number * 1e6


def state_of(schedule: Schedule, jitter_ms: int = 0) -> TaskState:
    spec = TaskSpec(schedule, HttpTarget(URL), jitter_ms=jitter_ms)
    return TaskState("task-1", "acme", spec, TaskStatus.SCHEDULED, T0, None, 0, T0, T0, "c1")


def point_read_us(rows: int = 100_000) -> float:
    """A read of one task's state from a partition store of ``rows`` tasks."""
    blob = encode_state(state_of(AtSchedule(T0)))
    with tempfile.TemporaryDirectory() as directory:
        store = PartitionStore(Path(directory) / "p.sqlite3")
        store.load((f"task-{n}", T0 + n, blob) for n in range(rows))
        keys = iter([f"task-{n * 7_919 % rows}" for n in range(20_000)])
        took = mean_us(lambda: store.get(next(keys)))
        store.close()
    return took


def main() -> None:
    at, cron = state_of(AtSchedule(T0)), state_of(CronSchedule("*/5 * * * *", "Europe/Berlin"))
    jittered = state_of(CronSchedule("*/5 * * * *", "Europe/Berlin"), 60_000)
    at_blob, cron_blob = encode_state(at), encode_state(cron)
    rows = [
        ("decode_state, one-time task", mean_us(lambda: decode_state(at_blob))),
        ("decode_state, cron task", mean_us(lambda: decode_state(cron_blob))),
        ("encode_state, one-time task", mean_us(lambda: encode_state(at))),
        ("validate_cron('*/5 * * * *')", mean_us(lambda: validate_cron("*/5 * * * *"))),
        ("next_due_ms, one-time task", mean_us(lambda: next_due_ms(at))),
        ("next_due_ms, cron task with jitter", mean_us(lambda: next_due_ms(jittered))),
        ("fire, one-time task", mean_us(lambda: fire(at, T0 + 5))),
        (
            "check_url (target URL)",
            mean_us(lambda: check_url(URL, "target.http.url", DEFAULT_LIMITS)),
        ),
        ("PartitionStore.get of 100,000 rows", point_read_us()),
    ]
    print(f"load average {os.getloadavg()[0]:.2f}")
    width = max(len(name) for name, _ in rows)
    for name, took in rows:
        print(f"{name:>{width}}  {took:8.2f} us")


if __name__ == "__main__":
    main()
