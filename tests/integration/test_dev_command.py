"""`kronwheel dev` as a user runs it: its own embedded broker, a callback, a clean stop,
and no process left behind, even when it is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.timefmt import format_rfc3339_ms
from streams.kafka.broker import free_loopback_port
from streams.ops.procs import descendants, is_running, kill, spawn
from tests.support.harness import ApiClient, CallbackSink

TOKEN = "dev-test-token"


def became_true(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.1)
    return False


class DevRun:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_loopback_port()
        self.log_path = tmp_path / "dev.log"
        env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(
            {
                "KRONWHEEL_API_PORT": str(self.port),
                "KRONWHEEL_API_TOKEN": TOKEN,
                "KRONWHEEL_DATA_DIR": str(tmp_path / "data"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        with self.log_path.open("wb") as log_file:
            self.process = spawn(
                [sys.executable, "-m", "streams.cli", "dev"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_running(self) -> None:
        assert became_true(lambda: "kronwheel dev is running" in self.log(), 60), self.log()


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path)
    try:
        yield run
    finally:
        below = descendants(run.process.pid)
        kill(run.process)
        for pid in below:  # only our own processes, by PID
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


def test_dev_fires_a_task_and_stops_cleanly(dev: DevRun) -> None:
    dev.wait_running()
    log = dev.log()
    assert TOKEN in log
    assert f"http://127.0.0.1:{dev.port}" in log
    assert "loopback" in log
    assert "ALLOWED" in log
    children = descendants(dev.process.pid)
    assert len(children) >= 4  # broker, processor, dispatcher, API

    api = ApiClient(f"http://127.0.0.1:{dev.port}", TOKEN)
    with CallbackSink() as sink:
        at = format_rfc3339_ms(time.time_ns() // 1_000_000 + 1_500)
        status, task = api.post(
            "/v1/tasks", {"schedule": {"at": at}, "target": {"http": {"url": sink.url}}}
        )
        assert status == 202, task
        [callback] = sink.wait_for(1, timeout_s=60)
    assert callback.headers["Kronwheel-Task-Id"] == task["id"]
    assert became_true(lambda: api.get(f"/v1/tasks/{task['id']}")[1]["status"] == "completed", 10)

    dev.process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert dev.process.wait(30) == 0, dev.log()
    assert "kronwheel dev stopped" in dev.log()
    assert not [pid for pid in children if is_running(pid)]


def test_sigkilled_dev_leaves_no_orphan(dev: DevRun) -> None:
    dev.wait_running()
    children = descendants(dev.process.pid)
    assert children
    kill(dev.process)
    assert became_true(lambda: not [pid for pid in children if is_running(pid)], 20), [
        pid for pid in children if is_running(pid)
    ]
