"""A dispatcher behind on several partitions serves them side by side (issue 15).

Before, it started firings in the order it fetched them and paused every
partition once the read-ahead was full: one burst drained its six partitions
strictly one after another. Driven in process through the in-memory log with
a fake runner that records the order in which calls start.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from streams.config import Settings
from streams.core.attempts import Attempt
from streams.core.clock import FakeClock
from streams.core.events import DueTask, ExecutionResult
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy
from streams.dispatching.dispatcher import Dispatcher
from streams.kafka.records import decode_result, encode_due
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS
from streams.views.history.sqlite import SqliteHistoryStore
from tests.support.memlog import MemKafka, MemLog

PARTITIONS = 6
SETTINGS = Settings(topic_prefix="f.", slot="d1", instance_id="d1", dispatch_concurrency=8)


class OrderRunner:
    """Succeeds at once once ``gate`` is open; remembers which partition each call was for."""

    def __init__(self, clock: FakeClock, open_now: bool = True) -> None:
        self.clock = clock
        self.gate = asyncio.Event()
        if open_now:
            self.gate.set()
        self.order: list[int] = []

    async def run(self, due: DueTask) -> Attempt:
        self.order.append(int(due.task_id.split("-")[0][1:]))
        await self.gate.wait()
        now = self.clock.now_ms()
        return Attempt(Outcome.SUCCEEDED, now, now, http_status=200)


class NoNotifier:
    def notify(self, due: DueTask, result: ExecutionResult) -> None:
        pass

    async def close(self, grace_s: float = 0) -> None:
        pass


@pytest.fixture
def log() -> MemLog:
    log = MemLog()
    for name in (DUE, RESULTS, COMMANDS):
        log.create_topic(f"f.{name}", PARTITIONS)
    log.create_topic(f"f.{DEAD}", 1)
    return log


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteHistoryStore]:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    yield store
    store.close()


def backlog(log: MemLog, clock: FakeClock, per_partition: int) -> set[str]:
    """Due events, all due now, ``per_partition`` on each partition; returns the fire ids."""
    fires = set()
    at = clock.now_ms()
    for partition in range(PARTITIONS):
        for n in range(per_partition):
            task_id = f"p{partition}-{n}"
            due = DueTask(
                fire_id(task_id, at, 1),
                task_id,
                "acme",
                task_id,
                at,
                1,
                at,
                HttpTarget("http://127.0.0.1:9/never-called"),
                RetryPolicy(1, backoff_ms=1_000, max_backoff_ms=4_000),
            )
            log.append(f"f.{DUE}", task_id.encode(), encode_due(due), partition=partition)
            fires.add(due.fire_id)
    return fires


def results(log: MemLog) -> Counter[str]:
    return Counter(decode_result(m.value() or b"").fire_id for m in log.records(f"f.{RESULTS}"))


async def started(
    log: MemLog, store: SqliteHistoryStore, runner: OrderRunner
) -> tuple[Dispatcher, MemKafka]:
    kafka = MemKafka(log, f"f.{DUE}", "dispatchers")
    d = Dispatcher(SETTINGS, store, runner.clock, kafka=kafka, runner=runner, notifier=NoNotifier())
    kafka.assign(list(range(PARTITIONS)))
    await d.start()
    return d, kafka


async def drive(d: Dispatcher, runner: OrderRunner, until: Callable[[], bool]) -> None:
    for _ in range(2_000):
        await d.cycle(runner, NoNotifier())
        if until():
            return
    raise AssertionError("the dispatcher never got there")


async def test_fetched_firings_start_in_turn_across_partitions(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    fires = backlog(log, clock, per_partition=40)  # one poll fetches all of them
    runner = OrderRunner(clock)
    d, _ = await started(log, store, runner)
    await drive(d, runner, lambda: len(results(log)) == len(fires))

    order = runner.order
    first_call = {p: order.index(p) for p in range(PARTITIONS)}
    last_call = {p: len(order) - 1 - order[::-1].index(p) for p in range(PARTITIONS)}
    assert max(first_call.values()) < PARTITIONS, f"a partition waited: {first_call}"
    assert min(last_call.values()) >= len(order) - PARTITIONS, f"one finished early: {last_call}"
    assert results(log) == Counter(dict.fromkeys(fires, 1))
    await d.close()


async def test_a_backlog_larger_than_the_read_ahead_is_read_from_every_partition(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    fires = backlog(log, clock, per_partition=200)  # a poll takes 500: three partitions
    runner = OrderRunner(clock, open_now=False)
    d, kafka = await started(log, store, runner)
    for _ in range(3):
        await d.cycle(runner, NoNotifier())

    held = {p: d.partitions[p].progress.held for p in range(PARTITIONS)}
    assert all(held.values()), f"partitions left unread while others filled up: {held}"
    assert kafka.paused == set(range(PARTITIONS)), "each pauses at its own share"

    runner.gate.set()
    await drive(d, runner, lambda: len(results(log)) == len(fires))
    assert set(runner.order[:12]) == set(range(PARTITIONS)), runner.order[:12]
    assert results(log) == Counter(dict.fromkeys(fires, 1))
    await d.close()


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def test_the_wait_before_a_call_is_measured_apart_from_the_call(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()

    class WaitsThenAnswers(OrderRunner):
        async def run(self, due: DueTask) -> Attempt:
            self.clock.advance(250)  # waited 250 ms for a slot; the call itself takes 40
            started = self.clock.now_ms()
            self.clock.advance(40)
            return Attempt(Outcome.SUCCEEDED, started, self.clock.now_ms(), http_status=200)

    fires = backlog(log, clock, per_partition=1)
    runner = WaitsThenAnswers(clock)
    waits, calls = (
        sample(f"kronwheel_dispatch_{m}_seconds_sum") for m in ("queue_wait", "duration")
    )
    d, _ = await started(log, store, runner)
    await drive(d, runner, lambda: len(results(log)) == len(fires))

    # The n-th call waited its own 250 ms plus the 290 of each one before it.
    expected_waits = sum(250 + 290 * n for n in range(len(fires))) / 1000
    assert sample("kronwheel_dispatch_queue_wait_seconds_sum") - waits == pytest.approx(
        expected_waits
    )
    assert sample("kronwheel_dispatch_duration_seconds_sum") - calls == pytest.approx(
        0.04 * len(fires)
    )
    rows = store.executions_between(0, 2**62)
    assert {r.finished_at_ms - r.started_at_ms for r in rows} == {40}, "history keeps the call time"
    await d.close()
