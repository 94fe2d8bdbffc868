"""The walking skeleton's path, through the real broker and real processes:

POST /v1/tasks -> tasks.commands -> processor -> tasks.due -> dispatcher ->
HTTP callback (contract headers, signed) -> history store + tasks.results ->
GET /v1/tasks/{id} and /executions.

It also measures scheduled instant -> callback received for 100 tasks and
writes the numbers to .artifacts/e2e_latency.json (printed with -s). No wall
time is asserted: these machines are noisy.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.core.model import Outcome
from streams.core.signing import verify_signature
from streams.core.timefmt import format_rfc3339_ms, parse_rfc3339_ms
from streams.kafka.records import decode_result
from streams.kafka.topics import RESULTS
from tests.support.harness import ApiClient, CallbackSink, Pipeline, read_topic

TASKS = 100
SPACING_MS = 20


def test_tasks_fire_end_to_end(settings: Settings, pipeline: Pipeline, artifacts_dir: Path) -> None:
    pipeline.start_ready("processor", "dispatcher", "api")
    api = ApiClient(f"http://127.0.0.1:{settings.api_port}", settings.api_token or "")

    with CallbackSink() as sink:
        start_ms = time.time_ns() // 1_000_000 + 3_000
        tasks: dict[str, dict[str, Any]] = {}
        for i in range(TASKS):
            status, task = api.post(
                "/v1/tasks",
                {
                    "name": f"e2e-{i}",
                    "schedule": {"at": format_rfc3339_ms(start_ms + i * SPACING_MS)},
                    "target": {"http": {"url": sink.url, "body": f'{{"n": {i}}}'}},
                },
            )
            assert status == 202, task
            tasks[task["id"]] = task
        callbacks = sink.wait_for(TASKS, timeout_s=60)

    # Every task called back exactly once, with the contract's headers.
    by_task = {c.headers["Kronwheel-Task-Id"]: c for c in callbacks}
    assert len(callbacks) == TASKS
    assert set(by_task) == set(tasks)
    lateness_ms = []
    for task_id, callback in by_task.items():
        scheduled_ms = parse_rfc3339_ms(tasks[task_id]["schedule"]["at"])
        headers = callback.headers
        assert headers["Idempotency-Key"] == f"{task_id}:{scheduled_ms}:1"
        assert parse_rfc3339_ms(headers["Kronwheel-Scheduled-At"]) == scheduled_ms
        assert headers["Kronwheel-Attempt"] == "1"
        assert verify_signature(
            settings.signing_secret or "",
            headers["Kronwheel-Signature"],
            callback.body,
            now_s=callback.received_ms // 1000,
        )
        assert json.loads(callback.body)["n"] == int(tasks[task_id]["name"].split("-")[1])
        assert callback.received_ms >= scheduled_ms, "a task must never fire early"
        lateness_ms.append(callback.received_ms - scheduled_ms)

    # The history store and the read model show the outcome.
    for task_id in tasks:
        status, shown = api.get(f"/v1/tasks/{task_id}")
        assert status == 200
        assert shown["status"] == "completed"
        assert shown["last_outcome"]["outcome"] == "succeeded"
        status, runs = api.get(f"/v1/tasks/{task_id}/executions")
        assert [(r["attempt"], r["outcome"], r["http_status"]) for r in runs["executions"]] == [
            (1, "succeeded", 200)
        ]

    # tasks.results carries one final outcome per firing.
    results = [decode_result(v) for _, v, _ in read_topic(settings, settings.topic(RESULTS)) if v]
    assert sorted(r.task_id for r in results) == sorted(tasks)
    assert all(r.outcome is Outcome.SUCCEEDED and r.final for r in results)
    assert len({r.fire_id for r in results}) == TASKS

    codes = pipeline.stop_all()
    assert all(code == 0 for code in codes.values()), codes

    report = latency_report(lateness_ms)
    (artifacts_dir / "e2e_latency.json").write_text(json.dumps(report, indent=2))
    print(f"\nscheduled -> callback over {TASKS} tasks: {report}")


def latency_report(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max_ms": ordered[-1],
        "mean_ms": round(statistics.fmean(ordered), 1),
    }
