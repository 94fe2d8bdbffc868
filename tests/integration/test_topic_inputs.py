"""What other services put on the topics directly: Avro commands, garbage, duplicates."""

from __future__ import annotations

import time

from confluent_kafka import Producer

from streams.config import Settings, producer_config
from streams.core.events import CommandKind, DueTask, TaskCommand
from streams.core.ids import fire_id
from streams.core.model import AtSchedule, CronSchedule, HttpTarget, RetryPolicy, TaskSpec
from streams.kafka.records import decode_dead_letter, decode_result, encode_command, encode_due
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS
from streams.views.history import open_execution_history
from tests.support.harness import CallbackSink, Pipeline, read_topic


def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce in order to partition 0, so that a later record is processed after earlier ones."""
    producer = Producer(producer_config(settings, "test"))
    for key, value in records:
        producer.produce(settings.topic(topic), value=value, key=key, partition=0)
    assert producer.flush(10) == 0


def test_avro_commands_from_another_service_and_malformed_ones(
    settings: Settings, pipeline: Pipeline
) -> None:
    processor = pipeline.start_ready("processor", "dispatcher")["processor"]
    with CallbackSink() as sink:
        due_ms = time.time_ns() // 1_000_000 + 1_000
        good = TaskCommand(
            "cmd-1",
            "from-billing-1",
            "billing",
            CommandKind.CREATE,
            due_ms - 1_000,
            "billing-service",
            TaskSpec(AtSchedule(due_ms), HttpTarget(sink.url)),
        )
        bad_zone = TaskCommand(
            "cmd-2",
            "from-billing-2",
            "billing",
            CommandKind.CREATE,
            due_ms - 1_000,
            "billing-service",
            TaskSpec(CronSchedule("* * * * *", "Mars/Olympus"), HttpTarget(sink.url)),
        )
        garbage = b"\x02\xff not avro at all"
        produce(
            settings,
            COMMANDS,
            [
                (b"from-billing-0", garbage),
                (b"from-billing-2", encode_command(bad_zone)),
                (b"from-billing-1", encode_command(good)),
            ],
        )
        [callback] = sink.wait_for(1, timeout_s=30)
    assert callback.headers["Idempotency-Key"] == fire_id("from-billing-1", due_ms, 1)

    dead = {d.task_id: d for d in map(decode_dead_letter, _values(settings, DEAD))}
    assert set(dead) == {"from-billing-0", "from-billing-2"}
    assert dead["from-billing-0"].original_value == garbage
    assert "TaskCommand" in dead["from-billing-0"].reason
    assert "Mars/Olympus" in dead["from-billing-2"].reason
    assert dead["from-billing-2"].source_topic == settings.topic(COMMANDS)
    assert processor.process.poll() is None  # it kept going


def test_a_firing_seen_twice_on_tasks_due_runs_once(settings: Settings, pipeline: Pipeline) -> None:
    pipeline.start_ready("dispatcher")
    with CallbackSink() as sink:
        scheduled = time.time_ns() // 1_000_000
        due = DueTask(
            fire_id("dup-1", scheduled, 1),
            "dup-1",
            "acme",
            "dup",
            scheduled,
            1,
            scheduled,
            HttpTarget(sink.url),
            RetryPolicy(),
        )
        produce(settings, DUE, [(b"dup-1", encode_due(due))])
        sink.wait_for(1, timeout_s=30)
        # The same firing again, as a replay or a broker without abort semantics sends
        # it, then a marker firing behind it in the same partition: once the marker
        # has called back, the duplicates before it have been consumed.
        marker = DueTask(
            fire_id("dup-1", scheduled + 1, 1),
            "dup-1",
            "acme",
            "marker",
            scheduled + 1,
            1,
            scheduled,
            HttpTarget(sink.url + "/marker"),
            RetryPolicy(),
        )
        produce(
            settings,
            DUE,
            [
                (b"dup-1", encode_due(due)),
                (b"dup-1", encode_due(due)),
                (b"dup-1", encode_due(marker)),
            ],
        )
        callbacks = sink.wait_for(2, timeout_s=30)
    assert [c.path for c in callbacks] == ["/hook", "/hook/marker"]
    results = [decode_result(v) for v in _values(settings, RESULTS)]
    assert sorted(r.fire_id for r in results) == sorted([due.fire_id, marker.fire_id])
    pipeline.stop_all()
    store = open_execution_history(settings)
    assert [r.fire_id for r in store.executions("dup-1")] == [marker.fire_id, due.fire_id]
    store.close()


def _values(settings: Settings, topic: str) -> list[bytes]:
    return [v for _, v, _ in read_topic(settings, settings.topic(topic)) if v is not None]
