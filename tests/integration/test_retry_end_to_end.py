"""Retries through the wheel, end to end: API -> processor -> dispatcher -> RETRY command ->
processor -> DueTask(attempt+1, reason=retry) -> ... -> tasks.dead and a FAILED final.

The dispatcher's side of it alone is tested in tests/integration/test_dispatcher.py.
"""

from __future__ import annotations

import itertools
import time

from streams.config import Settings
from streams.core.model import Outcome
from streams.core.timefmt import format_rfc3339_ms, parse_rfc3339_ms
from streams.kafka.records import decode_dead_letter, decode_due, decode_result
from streams.kafka.topics import DEAD, RESULTS
from streams.views.history import open_execution_history
from tests.support.harness import ApiClient, CallbackSink, Pipeline, read_topic


def test_a_target_that_always_fails_ends_in_tasks_dead_after_max_attempts(
    settings: Settings, pipeline: Pipeline
) -> None:
    pipeline.start_ready("processor", "dispatcher", "api")
    api = ApiClient(f"http://127.0.0.1:{settings.api_port}", settings.api_token or "")
    with CallbackSink(status=503) as failing:
        at_ms = time.time_ns() // 1_000_000 + 2_000
        status, task = api.post(
            "/v1/tasks",
            {
                "name": "always-fails",
                "schedule": {"at": format_rfc3339_ms(at_ms)},
                "target": {"http": {"url": failing.url}},
                "retry": {"max_attempts": 3, "backoff_ms": 200, "max_backoff_ms": 400},
            },
        )
        assert status == 202, task
        callbacks = failing.wait_for(3, timeout_s=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not read_topic(
            settings, settings.topic(DEAD), idle_s=0.5
        ):
            time.sleep(0.2)

    task_id = task["id"]
    scheduled = parse_rfc3339_ms(task["schedule"]["at"])
    assert [c.headers["Idempotency-Key"] for c in callbacks] == [
        f"{task_id}:{scheduled}:{attempt}" for attempt in (1, 2, 3)
    ]
    # Each retry came no earlier than its backoff after the failure before it.
    gaps = [b.received_ms - a.received_ms for a, b in itertools.pairwise(callbacks)]
    assert gaps[0] >= 100, gaps
    assert gaps[1] >= 200, gaps

    results = sorted(
        (decode_result(v) for _, v, _ in read_topic(settings, settings.topic(RESULTS)) if v),
        key=lambda r: r.attempt,
    )
    assert [(r.attempt, r.outcome, r.final) for r in results] == [
        (1, Outcome.FAILED, False),
        (2, Outcome.FAILED, False),
        (3, Outcome.FAILED, True),
    ]
    [(_key, value, _partition)] = read_topic(settings, settings.topic(DEAD))
    assert value is not None
    dead = decode_dead_letter(value)
    assert "retries exhausted" in dead.reason
    assert dead.original_value is not None
    last_due = decode_due(dead.original_value)
    assert (last_due.attempt, last_due.reason.value) == (3, "retry")

    store = open_execution_history(settings)
    try:
        assert [(r.attempt, r.final) for r in store.executions(task_id)] == [
            (3, True),
            (2, False),
            (1, False),
        ]
    finally:
        store.close()
    pipeline.stop_all()
