"""Issue 12, live: records any producer can put on the topics stop no role.

Avro commands that break the shared rules (a cron that never fires, an instant
in year 146 million, every_ms 1, a Kafka target on kronwheel's own changelog)
and firings no processor would emit are dead-lettered; the processor, the
dispatcher and the API's projector keep going, and a good task behind them
fires and shows in the read model. Targets are a sink on 127.0.0.1.
"""

from __future__ import annotations

import time

from confluent_kafka import Producer

from streams.config import Settings, producer_config
from streams.core.events import CommandKind, DueTask, TaskCommand
from streams.core.ids import fire_id
from streams.core.model import (
    AtSchedule,
    CronSchedule,
    HttpTarget,
    IntervalSchedule,
    KafkaTarget,
    RetryPolicy,
    TaskSpec,
)
from streams.kafka.records import decode_dead_letter, encode_command, encode_due
from streams.kafka.topics import COMMANDS, DEAD, DUE
from tests.support.harness import ApiClient, CallbackSink, Pipeline, read_topic


def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(producer_config(settings, "test"))
    for key, value in records:
        producer.produce(settings.topic(topic), value=value, key=key, partition=0)
    assert producer.flush(10) == 0


def command(task_id: str, spec: TaskSpec, now_ms: int) -> tuple[bytes, bytes]:
    created = TaskCommand(
        f"c-{task_id}", task_id, "billing", CommandKind.CREATE, now_ms, "billing-service", spec
    )
    return task_id.encode(), encode_command(created)


def test_hostile_records_are_dead_lettered_and_every_role_goes_on(
    settings: Settings, pipeline: Pipeline
) -> None:
    roles = pipeline.start_ready("api", "processor", "dispatcher")
    with CallbackSink() as sink:
        now_ms = time.time_ns() // 1_000_000
        target = HttpTarget(sink.url)
        bad = {
            "never-fires": TaskSpec(CronSchedule("0 0 30 2 *"), target),
            "never-fires-6": TaskSpec(CronSchedule("0 0 0 31 4 *"), target),
            "far-future": TaskSpec(AtSchedule(2**62), target),
            "too-often": TaskSpec(IntervalSchedule(1), target),
            "own-topic": TaskSpec(AtSchedule(now_ms + 500), KafkaTarget("tasks.state")),
        }
        good = TaskSpec(AtSchedule(now_ms + 1_000), target)
        records = [command(task_id, spec, now_ms) for task_id, spec in bad.items()]
        produce(settings, COMMANDS, [*records, command("good-1", good, now_ms)])
        # A firing no processor would emit: it smuggles a second request.
        smuggler = DueTask(
            fire_id("smuggler", now_ms, 1),
            "smuggler",
            "billing",
            "s",
            now_ms,
            1,
            now_ms,
            HttpTarget(sink.url + "/smuggled", headers={"Transfer-Encoding": "chunked"}),
            RetryPolicy(),
        )
        produce(settings, DUE, [(b"smuggler", encode_due(smuggler))])
        [callback] = sink.wait_for(1, timeout_s=60)
    assert callback.path == "/hook"
    assert callback.headers["Idempotency-Key"] == fire_id("good-1", now_ms + 1_000, 1)
    dead = {d.task_id: d for d in map(decode_dead_letter, _values(settings, DEAD))}
    assert set(bad) | {"smuggler"} <= set(dead)
    assert "never_fires" in dead["never-fires"].reason
    assert "reserved_header" in dead["smuggler"].reason
    for role in roles.values():
        assert role.process.poll() is None, f"{role.role} stopped:\n{role.log_text()[-2000:]}"
    # The read model did not freeze: the good task shows, the bad ones do not.
    base = f"http://127.0.0.1:{settings.api_port}"
    _, made = ApiClient(base, settings.api_token or "").post("/v1/tokens", {"tenant": "billing"})
    billing = ApiClient(base, made["token"])
    deadline = time.monotonic() + 30
    status = 0
    while time.monotonic() < deadline and status != 200:
        status, _ = billing.get("/v1/tasks/good-1")
        time.sleep(0.2)
    assert status == 200
    assert billing.get("/v1/tasks/far-future")[0] == 404


def _values(settings: Settings, topic: str) -> list[bytes]:
    return [v for _, v, _ in read_topic(settings, settings.topic(topic)) if v is not None]
