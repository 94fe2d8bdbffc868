"""The real dispatcher loop, driven in process through the in-memory log.

Targets are a fake runner in process (no network), the history store is the
real SQLite one in tmp_path. Every test asserts what reached the committed
results topic and the history store: exactly once per fire id, whatever the
transaction did.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.config import Settings
from streams.core.attempts import Attempt
from streams.core.clock import FakeClock
from streams.core.events import DueTask, ExecutionResult
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy
from streams.dispatching.dispatcher import Dispatcher
from streams.kafka.records import decode_result, encode_due
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS
from streams.kafka.transactions import FatalKafkaError
from streams.views.history.sqlite import SqliteHistoryStore
from tests.support.memlog import Fault, MemKafka, MemLog

PARTITIONS = 2
GROUP = "dispatchers"
SETTINGS = Settings(topic_prefix="t.", slot="d1", instance_id="d1", dispatch_concurrency=8)


class FakeRunner:
    """Runs a firing in process: succeeds at once, or waits for its gate to open."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.calls: Counter[str] = Counter()
        self.gates: dict[str, asyncio.Event] = {}

    async def run(self, due: DueTask) -> Attempt:
        self.calls[due.fire_id] += 1
        gate = self.gates.get(due.task_id)
        if gate is not None:
            await gate.wait()
        now = self.clock.now_ms()
        return Attempt(Outcome.SUCCEEDED, now, now, http_status=200)


class FakeNotifier:
    def notify(self, due: DueTask, result: ExecutionResult) -> None:
        pass

    async def close(self, grace_s: float = 0) -> None:
        pass


@pytest.fixture
def log() -> MemLog:
    log = MemLog()
    for name in (DUE, RESULTS, COMMANDS):
        log.create_topic(f"t.{name}", PARTITIONS)
    log.create_topic(f"t.{DEAD}", 1)
    return log


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteHistoryStore]:
    store = SqliteHistoryStore(tmp_path / "history.sqlite3")
    yield store
    store.close()


def due_events(log: MemLog, clock: FakeClock, count: int = 8) -> dict[str, int]:
    """Write due events on tasks.due; returns fire id -> partition."""
    placed = {}
    for i in range(count):
        task_id = f"task-{i}"
        at = clock.now_ms()
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
        partition, _ = log.append(f"t.{DUE}", task_id.encode(), encode_due(due))
        placed[due.fire_id] = partition
    assert set(placed.values()) == set(range(PARTITIONS)), "the test needs both partitions"
    return placed


def results(log: MemLog) -> Counter[str]:
    return Counter(decode_result(m.value() or b"").fire_id for m in log.records(f"t.{RESULTS}"))


def history_rows(store: SqliteHistoryStore) -> Counter[str]:
    return Counter(r.fire_id for r in store.executions_between(0, 2**62))


def dispatcher(
    log: MemLog, store: SqliteHistoryStore, clock: FakeClock, runner: FakeRunner, owns: list[int]
) -> tuple[Dispatcher, MemKafka]:
    kafka = MemKafka(log, f"t.{DUE}", GROUP)
    d = Dispatcher(SETTINGS, store, clock, kafka=kafka, runner=runner, notifier=FakeNotifier())
    kafka.assign(owns)
    return d, kafka


async def drive(d: Dispatcher, runner: FakeRunner, until: Callable[[], bool]) -> None:
    """Cycle the loop (no timers: every wait is on the loop's own work) until ``until``."""
    for _ in range(500):
        await d.cycle(runner, FakeNotifier())
        if until():
            return
    raise AssertionError("the dispatcher never got there")


def committed(log: MemLog, partition: int) -> int | None:
    return log.committed(GROUP, f"t.{DUE}", partition)


async def test_an_abort_mid_step_emits_each_result_once_without_running_again(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    placed = due_events(log, clock)
    runner = FakeRunner(clock)
    d, kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    await d.start()
    kafka.producer.fail("commit", Fault.ABORTABLE)

    await drive(d, runner, lambda: "abort" in kafka.producer.calls)
    assert results(log) == Counter(), "nothing of the aborted transaction is visible"
    assert [committed(log, p) for p in range(PARTITIONS)] == [None, None]

    await drive(d, runner, lambda: len(results(log)) == len(placed))
    assert results(log) == Counter(dict.fromkeys(placed, 1))
    assert history_rows(store) == Counter(dict.fromkeys(placed, 1))
    assert runner.calls == Counter(dict.fromkeys(placed, 1)), "a recorded firing ran again"
    await d.close()


async def test_a_retriable_send_offsets_error_aborts_and_rewinds_instead_of_exiting(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    placed = due_events(log, clock)
    runner = FakeRunner(clock)
    d, kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    await d.start()
    kafka.producer.fail("send_offsets", Fault.RETRIABLE, times=3)
    await drive(d, runner, lambda: len(results(log)) == len(placed))
    assert kafka.producer.calls.count("abort") == 1
    assert results(log) == Counter(dict.fromkeys(placed, 1))
    assert runner.calls == Counter(dict.fromkeys(placed, 1))
    await d.close()


async def test_a_rewind_goes_back_to_committed_and_emits_the_same_results_once(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    placed = due_events(log, clock)
    runner = FakeRunner(clock)
    d, kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    await d.start()
    kafka.producer.fail("produce", Fault.ABORTABLE)
    await drive(d, runner, lambda: "abort" in kafka.producer.calls)
    assert kafka.positions([0, 1]) == {0: 0, 1: 0}, "the abort did not rewind to committed"
    await drive(d, runner, lambda: len(results(log)) == len(placed))
    assert results(log) == Counter(dict.fromkeys(placed, 1))
    assert history_rows(store) == Counter(dict.fromkeys(placed, 1))
    for partition in range(PARTITIONS):
        assert committed(log, partition) == Counter(placed.values())[partition]
    await d.close()


async def test_a_revoke_mid_step_leaves_the_results_to_the_new_owner(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    placed = due_events(log, clock)
    on_1 = {f for f, p in placed.items() if p == 1}
    runner = FakeRunner(clock)
    for fire in on_1:  # partition 1's targets are still running when it moves
        runner.gates[fire.split(":")[0]] = asyncio.Event()
    old, old_kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    await old.start()
    await drive(old, runner, lambda: set(runner.calls) == set(placed))
    old_kafka.revoke([1])
    await drive(old, runner, lambda: 1 not in old.partitions)
    for gate in runner.gates.values():
        gate.set()
    await drive(old, runner, lambda: len(history_rows(store)) == len(placed))
    await drive(old, runner, lambda: committed(log, 0) is not None)
    assert set(results(log)) == set(placed) - on_1, (
        "the old owner wrote results of a partition it no longer owns"
    )
    assert committed(log, 1) is None

    new, _ = dispatcher(log, store, clock, runner, owns=[1])
    await new.start()
    await drive(new, runner, lambda: len(results(log)) == len(placed))
    assert results(log) == Counter(dict.fromkeys(placed, 1))
    assert history_rows(store) == Counter(dict.fromkeys(placed, 1))
    assert runner.calls == Counter(dict.fromkeys(placed, 1)), "the new owner ran them again"
    assert committed(log, 1) == len(on_1)
    await old.close()
    await new.close()


async def test_a_fenced_commit_ends_the_loop_and_writes_nothing(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    due_events(log, clock)
    runner = FakeRunner(clock)
    d, kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    kafka.producer.fail("commit", Fault.FENCED)
    with pytest.raises(FatalKafkaError):
        await asyncio.wait_for(d.run(), timeout=30)  # the real loop; a bound, not a timer
    assert "abort" not in kafka.producer.calls
    assert kafka.producer.calls.count("commit") == 1, "it tried to commit again after fencing"
    assert results(log) == Counter()
    assert [committed(log, p) for p in range(PARTITIONS)] == [None, None]


async def test_a_revoke_and_reassign_in_one_poll_rereads_from_committed(
    log: MemLog, store: SqliteHistoryStore
) -> None:
    clock = FakeClock()
    placed = due_events(log, clock)
    runner = FakeRunner(clock)
    d, kafka = dispatcher(log, store, clock, runner, owns=[0, 1])
    await d.start()
    kafka.revoke([1])  # the first poll fetches, then partition 1 moves away and back
    kafka.assign([1], after_fetch=True)
    await drive(d, runner, lambda: len(results(log)) == len(placed))
    await drive(d, runner, lambda: committed(log, 1) == Counter(placed.values())[1])
    assert results(log) == Counter(dict.fromkeys(placed, 1))
    assert history_rows(store) == Counter(dict.fromkeys(placed, 1))
    await d.close()
