"""Tasks created about one wheel horizon ahead, and recurring tasks with periods
around it, all fire exactly once (counted on tasks.due, read_committed).

This is where the horizon race lived: a task created in the step in which the
horizon moves over its time was promoted from an index that did not have it
yet, and never fired (1 in 2,910 on the dev broker, 130 on Kafka, with a 60 s
horizon). The horizon is 3 s here, so that the test crosses it a few thousand
times in about 20 s. No dispatcher runs: this is the processor's guarantee.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import replace

import pytest
from confluent_kafka import Producer

from streams.config import Settings, producer_config
from streams.core.model import AtSchedule, HttpTarget, IntervalSchedule, Schedule, TaskSpec
from streams.kafka.topics import COMMANDS
from streams.kafka.transactions import produce_retrying
from tests.integration.test_processor_failover import assert_exactly_once, fire_id_counts
from tests.support.harness import Pipeline, create_record

HORIZON_MS = 3_000
CREATE_FOR_S = 15.0
BATCH = 10
BATCH_EVERY_S = 0.05
SPREAD_MS = 500  # at = now + horizon +- this
PERIODS_MS = (2_000, 2_999, 3_000, 3_001, 4_000)
RECURRING_PER_PERIOD = 4
TARGET = HttpTarget("https://example.com/hook")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, wheel_horizon_ms=HORIZON_MS)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def recurring(producer: Producer, topic: str, start_ms: int, end_ms: int) -> set[str]:
    """Interval tasks with periods around the horizon, over a fixed window; their fire ids."""
    expected: set[str] = set()
    for period in PERIODS_MS:
        for n in range(RECURRING_PER_PERIOD):
            task_id = f"every-{period}-{n}-{uuid.uuid4().hex[:6]}"
            first = start_ms + n * 250
            schedule: Schedule = IntervalSchedule(period, first, end_ms)
            key, value = create_record(task_id, TaskSpec(schedule, TARGET), issuer="long-lead")
            produce_retrying(producer, topic, key, value)
            expected |= {f"{task_id}:{at}:1" for at in range(first, end_ms + 1, period)}
    return expected


def test_tasks_about_one_horizon_ahead_all_fire_exactly_once(
    settings: Settings, pipeline: Pipeline
) -> None:
    pipeline.start_ready("processor")
    topic = settings.topic(COMMANDS)
    producer = Producer(producer_config(settings, "test-producer", **{"linger.ms": 5}))
    rng = random.Random(13)
    begin = now_ms()
    expected = recurring(producer, topic, begin + 1_000, begin + 1_000 + int(CREATE_FOR_S * 1000))
    batches = 0
    while now_ms() - begin < CREATE_FOR_S * 1000:
        for _ in range(BATCH):
            task_id = f"lead-{uuid.uuid4().hex[:12]}"
            at = now_ms() + HORIZON_MS + rng.randint(-SPREAD_MS, SPREAD_MS)
            key, value = create_record(task_id, TaskSpec(AtSchedule(at), TARGET), issuer="lead")
            produce_retrying(producer, topic, key, value)
            expected.add(f"{task_id}:{at}:1")
        producer.poll(0)
        batches += 1
        time.sleep(BATCH_EVERY_S)
    assert producer.flush(30) == 0
    assert batches * BATCH > 1_000  # enough crossings to mean something
    counts = fire_id_counts(settings, expected, deadline_s=60)
    assert_exactly_once(counts, expected)
