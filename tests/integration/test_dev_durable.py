"""What ``kronwheel dev`` accepted survives a SIGKILL of its whole process tree.

Tasks due from 5 s to LEAD_MAX_S ahead, and recurring ones, are created; the
dev process and every process below it are SIGKILLed together mid-stream; dev
is started again on the same data directory. Every task fires, no fire id is
recorded twice, and the read model and the history show them.

KRONWHEEL_LONG_DURABLE=1 runs the issue's full variant (lead times up to 3 min).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.timefmt import format_rfc3339_ms
from tests.support.devrun import DevRun
from tests.support.harness import Callback, CallbackSink
from tests.support.waiting import wait_until

TOKEN = "dev-durable-token"
LONG = os.environ.get("KRONWHEEL_LONG_DURABLE") == "1"
LEAD_MAX_S = 180 if LONG else 40
ONE_TIME = 60 if LONG else 30


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path, TOKEN)
    try:
        yield run
    finally:
        run.kill_tree()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create(dev: DevRun, body: dict[str, object]) -> str:
    status, task = dev.api.post("/v1/tasks", body)
    assert status == 202, task
    return str(task["id"])


def task_ids(callbacks: list[Callback]) -> set[str]:
    return {c.headers["Kronwheel-Task-Id"] for c in callbacks}


@pytest.mark.timeout(600 if LONG else 240)
def test_a_sigkilled_tree_restarts_with_every_task(dev: DevRun) -> None:
    dev.start().wait_running()
    with CallbackSink() as sink:
        start = now_ms()
        one_time = {
            create(
                dev,
                {
                    "name": f"once-{i}",
                    "schedule": {
                        "at": format_rfc3339_ms(
                            start + 5_000 + i * (LEAD_MAX_S - 5) * 1000 // ONE_TIME
                        )
                    },
                    "target": {"http": {"url": sink.url}},
                },
            )
            for i in range(ONE_TIME)
        }
        recurring = {
            create(
                dev,
                {
                    "name": f"every-{i}",
                    "schedule": {"every_ms": 4_000},
                    "target": {"http": {"url": sink.url}},
                },
            )
            for i in range(2)
        }
        # Mid-stream: some one-time tasks have fired, most have not.
        wait_until(lambda: len(task_ids(sink.received()) & one_time) >= 2, 30, "first firings")
        dev.kill_tree()
        killed_ms = now_ms()
        fired_before = task_ids(sink.received()) & one_time

        restart_s = dev.start().wait_running()
        assert "restored" in dev.log()
        wait_until(
            lambda: one_time <= task_ids(sink.received()), LEAD_MAX_S + 60, "every one-time task"
        )
        wait_until(
            lambda: (
                recurring
                <= {
                    c.headers["Kronwheel-Task-Id"]
                    for c in sink.received()
                    if c.received_ms > killed_ms
                }
            ),
            30,
            "the recurring tasks to fire again after the restart",
        )
        time.sleep(2)  # a late duplicate would arrive now
        callbacks = sink.received()

    print(f"restart to banner: {restart_s:.1f} s; fired before the kill: {len(fired_before)}")
    doubled = {
        k for k, n in Counter(c.headers["Idempotency-Key"] for c in callbacks).items() if n > 1
    }
    for task_id in one_time:
        status, task = dev.api.get(f"/v1/tasks/{task_id}")
        assert status == 200, task
        assert task["status"] == "completed", task
        status, body = dev.api.get(f"/v1/tasks/{task_id}/executions")
        fire_ids = [e["fire_id"] for e in body["executions"] if e["final"]]
        assert len(fire_ids) == 1, (task_id, body)
    # A fire id seen twice at the target (a kill between the call and its record) is
    # at-least-once delivery; it must still be one outcome in the history.
    for key in doubled:
        task_id = next(
            c.headers["Kronwheel-Task-Id"] for c in callbacks if c.headers["Idempotency-Key"] == key
        )
        _, body = dev.api.get(f"/v1/tasks/{task_id}/executions")
        assert [e["fire_id"] for e in body["executions"]].count(key) == 1, body
    assert len(doubled) <= 2, doubled


def test_a_202_survives_even_when_the_keeper_has_copied_nothing(dev: DevRun) -> None:
    """The API writes each command to the kept log before it answers 202: with the
    keeper frozen (SIGSTOP), the tree SIGKILLed, every accepted task still fires."""
    dev.start().wait_running()
    # Once (1 of 3 clean-clone runs) no keeper was running right after the banner;
    # not reproduced since. A restarted keeper is as good for this test, and if
    # none comes, dev's log says what happened to it.
    try:
        keeper = wait_until(lambda: dev.role_pid("keeper"), 15, "a running keeper")
    except TimeoutError:
        pytest.fail(f"no keeper running after the banner:\n{dev.log()[-4000:]}")
    assert keeper is not None
    os.kill(keeper, signal.SIGSTOP)
    with CallbackSink() as sink:
        start = now_ms()
        created = {
            create(
                dev,
                {
                    "name": f"acked-{i}",
                    "schedule": {"at": format_rfc3339_ms(start + 3_000 + i * 300)},
                    "target": {"http": {"url": sink.url}},
                },
            )
            for i in range(10)
        }
        dev.kill_tree()
        dev.start().wait_running()
        wait_until(lambda: created <= task_ids(sink.received()), 60, "every acknowledged task")
        time.sleep(1)
        callbacks = sink.received()
    keys = Counter(c.headers["Idempotency-Key"] for c in callbacks)
    assert len(keys) == len(created), keys


def test_a_clean_stop_keeps_every_task_and_its_pause(dev: DevRun) -> None:
    """Ctrl-C, then start again: pending tasks fire, a paused task stays paused, the
    history and tokens are still there."""
    dev.start().wait_running()
    with CallbackSink() as sink:
        first = create(
            dev,
            {
                "name": "before-stop",
                "schedule": {"at": format_rfc3339_ms(now_ms() + 500)},
                "target": {"http": {"url": sink.url}},
            },
        )
        wait_until(lambda: first in task_ids(sink.received()), 30, "the first firing")
        paused = create(
            dev, {"schedule": {"every_ms": 2_000}, "target": {"http": {"url": sink.url}}}
        )
        wait_until(lambda: dev.api.get(f"/v1/tasks/{paused}")[0] == 200, 10, "the read model")
        status, _ = dev.api.post(f"/v1/tasks/{paused}/pause", {})
        assert status == 202
        later = create(
            dev,
            {
                "name": "after-restart",
                "schedule": {"at": format_rfc3339_ms(now_ms() + 20_000)},
                "target": {"http": {"url": sink.url}},
            },
        )
        wait_until(
            lambda: dev.api.get(f"/v1/tasks/{paused}")[1].get("status") == "paused", 10, "pause"
        )
        assert dev.process is not None
        dev.process.send_signal(signal.SIGINT)
        assert dev.process.wait(60) == 0, dev.log()
        stopped_ms = now_ms()
        dev.start().wait_running()
        assert "left out" not in dev.log()  # the keeper finished a full copy at the stop
        wait_until(lambda: later in task_ids(sink.received()), 60, "the task due after the stop")
        callbacks = sink.received()
    assert dev.api.get(f"/v1/tasks/{paused}")[1]["status"] == "paused"
    assert not [
        c
        for c in callbacks
        if c.headers["Kronwheel-Task-Id"] == paused and c.received_ms > stopped_ms
    ]
    _, body = dev.api.get(f"/v1/tasks/{first}/executions")
    assert len(body["executions"]) == 1, body
    assert [c.headers["Kronwheel-Task-Id"] for c in callbacks].count(first) == 1
