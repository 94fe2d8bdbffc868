"""``kronwheel dev`` heals: SIGKILL each role in turn, it comes back in its slot, and
every task due after the kills fires, none twice as recorded.

A target may see one fire id twice (a kill between the callback and its record
is at-least-once by contract), but then the history holds one outcome for it.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.timefmt import format_rfc3339_ms
from tests.support.devrun import DevRun
from tests.support.harness import CallbackSink
from tests.support.waiting import wait_until

TOKEN = "dev-healing-token"


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path, TOKEN)
    try:
        yield run
    finally:
        run.kill_tree()


def create_at(dev: DevRun, sink: CallbackSink, due_ms: int, name: str) -> str:
    status, task = dev.api.post(
        "/v1/tasks",
        {
            "name": name,
            "schedule": {"at": format_rfc3339_ms(due_ms)},
            "target": {"http": {"url": sink.url}},
        },
    )
    assert status == 202, task
    return str(task["id"])


def test_each_role_is_restarted_and_nothing_is_lost_or_doubled(dev: DevRun) -> None:
    dev.start().wait_running()
    tasks: dict[str, str] = {}  # task id -> name
    with CallbackSink() as sink:
        for role in ("processor", "dispatcher", "keeper", "api"):
            now_ms = time.time_ns() // 1_000_000
            # Due while the role is down or coming back, and after.
            for lead_s in (1, 4, 8, 12, 20):
                task_id = create_at(dev, sink, now_ms + lead_s * 1000, f"{role}-{lead_s}")
                tasks[task_id] = f"{role}-{lead_s}"
            killed = dev.kill_role(role)
            wait_until(
                lambda role=role, killed=killed: dev.role_pid(role) not in (None, killed),  # type: ignore[misc]
                30,
                f"the {role} to come back",
            )
            assert f"the {role} exited (killed by SIGKILL)" in dev.log()
            if role == "api":
                wait_until(lambda: dev.api_answers(), 30, "the API to answer again")

        def every_task_called() -> bool:
            seen = {c.headers.get("Kronwheel-Task-Id") for c in sink.received()}
            return set(tasks) <= seen

        wait_until(every_task_called, 90, "a callback for every task")
        time.sleep(2)  # a late duplicate would show up now
        callbacks = sink.received()

    by_key = Counter(c.headers["Idempotency-Key"] for c in callbacks)
    assert {c.headers["Kronwheel-Task-Id"] for c in callbacks} == set(tasks)
    for task_id in tasks:
        status, body = dev.api.get(f"/v1/tasks/{task_id}/executions")
        assert status == 200, body
        fire_ids = [e["fire_id"] for e in body["executions"]]
        assert len(fire_ids) == len(set(fire_ids)) == 1, (tasks[task_id], body)
    doubled = {key: n for key, n in by_key.items() if n > 1}
    # Duplicates at the target are allowed only as at-least-once (one recorded outcome, above).
    assert len(doubled) <= 3, doubled
    assert "restarted the processor" in dev.log()
    assert "restarted the dispatcher" in dev.log()
    assert "restarted the api" in dev.log()
    assert "restarted the keeper" in dev.log()
    url = re.search(r"supervisor\s+(http://\S+/metrics)", dev.log())
    assert url is not None, dev.log()
    with urllib.request.urlopen(url.group(1), timeout=5) as response:
        scraped = response.read().decode()
    for role in ("processor", "dispatcher", "keeper", "api"):
        assert f'kronwheel_dev_role_restarts_total{{role="{role}"}} 1.0' in scraped, scraped
        assert f'kronwheel_dev_role_up{{role="{role}"}} 1.0' in scraped
    assert f"data directory   : {dev.data_dir}" in dev.log()
