"""Scheduled instant -> callback received, through the whole pipeline, against the
raw broker's produce -> consume latency measured in the same run.

    python -m bench.e2e_latency [--tasks 200] [--spacing-ms 20]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else an embedded broker. Roles run as
real processes (processor, dispatcher, API); the target is a local sink.
"""

from __future__ import annotations

import argparse
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bench.common import bench_settings, percentile, table
from streams.config import Settings, consumer_config, kafka_config, producer_config
from streams.core.timefmt import format_rfc3339_ms
from streams.kafka.topics import ensure_topics
from tests.support.harness import ApiClient, CallbackSink, Pipeline


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def raw_broker_latency(settings: Settings, count: int, spacing_ms: int) -> list[int]:
    """One record at a time, produce -> consume, with the pipeline's fetch settings."""
    topic = settings.topic("bench.raw")
    admin = AdminClient(kafka_config(settings, "bench"))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    producer = Producer(producer_config(settings, "bench"))
    consumer = Consumer(consumer_config(settings, "bench", f"bench-{uuid.uuid4().hex}"))
    consumer.subscribe([topic])
    while not consumer.assignment():
        consumer.poll(0.1)
    samples: list[int] = []
    for _ in range(count):
        producer.produce(topic, str(now_ms()).encode())
        producer.flush(5)
        message = None
        while message is None or message.error():
            message = consumer.poll(1.0)
        samples.append(now_ms() - int(message.value() or b"0"))
        time.sleep(spacing_ms / 1000)
    consumer.close()
    return samples


def pipeline_latency(settings: Settings, logs: Path, count: int, spacing_ms: int) -> list[int]:
    ensure_topics(settings)
    pipeline = Pipeline(settings, logs)
    try:
        pipeline.start_ready("processor", "dispatcher", "api")
        api = ApiClient(f"http://127.0.0.1:{settings.api_port}", settings.api_token or "")
        with CallbackSink() as sink:
            first = now_ms() + 3_000 + count // 2  # room to create them all first
            scheduled: dict[str, int] = {}
            for i in range(count):
                at = first + i * spacing_ms
                status, task = api.post(
                    "/v1/tasks",
                    {
                        "schedule": {"at": format_rfc3339_ms(at)},
                        "target": {"http": {"url": sink.url}},
                    },
                )
                if status != 202:
                    raise RuntimeError(f"create failed: {status} {task}")
                scheduled[task["id"]] = at
            callbacks = sink.wait_for(count, timeout_s=60 + count * spacing_ms / 1000)
        return [c.received_ms - scheduled[c.headers["Kronwheel-Task-Id"]] for c in callbacks]
    finally:
        pipeline.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--spacing-ms", type=int, default=20)
    args = parser.parse_args()
    with ExitStack() as stack:
        settings, work = bench_settings(stack, api_token="bench")
        raw = raw_broker_latency(settings, args.tasks, args.spacing_ms)
        e2e = pipeline_latency(settings, work / "logs", args.tasks, args.spacing_ms)
    rows = []
    for name, samples in (
        ("raw broker produce->consume", raw),
        ("scheduled->callback (pipeline)", e2e),
    ):
        rows.append(
            [
                name,
                len(samples),
                percentile(samples, 50),
                percentile(samples, 99),
                float(max(samples)),
                percentile(samples, 50) / max(1, percentile(raw, 50)),
            ]
        )
    print(f"latency in ms, {args.tasks} records/tasks, one every {args.spacing_ms} ms")
    print(table(["path", "n", "p50", "p99", "max", "p50 / raw p50"], rows))
    if len(e2e) < args.tasks:
        print(f"MISSING CALLBACKS: {args.tasks - len(e2e)}")


if __name__ == "__main__":
    main()
