"""The reach check a restore makes before it reuses a store whose checkpoint lies above
the reported high watermark (the dev broker's is short of the end by up to one batch):
it says yes up to the true end and no past it, on either broker, without reading the
partition from its start; and a processor killed right after a rebuild reuses its
stores when it is restarted in its slot."""

from __future__ import annotations

import re
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bench.restart import fill_changelog
from streams.config import Settings, consumer_config, kafka_config, producer_config
from streams.wheel.changelog import changelog_reaches
from tests.support.harness import Pipeline

RECORDS = 500


def test_the_changelog_reaches_its_true_end_and_no_further(settings: Settings) -> None:
    topic = settings.topic("reach")
    admin = AdminClient(kafka_config(settings, "test"))
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    producer = Producer({**producer_config(settings, "test"), "linger.ms": 50})
    for i in range(RECORDS):  # a few large batches: the dev broker's high is short
        producer.produce(topic, key=str(i).encode(), value=b"x" * 100)
    assert producer.flush(10) == 0
    consumer = Consumer(consumer_config(settings, "test", f"{settings.topic_prefix}reach"))
    try:
        _, reported_high = consumer.get_watermark_offsets(
            TopicPartition(topic, 0), timeout=10, cached=False
        )
    finally:
        consumer.close()
    assert reported_high <= RECORDS  # exact on Kafka, a lower bound on the dev broker
    assert changelog_reaches(settings, topic, 0, RECORDS)
    assert changelog_reaches(settings, topic, 0, reported_high)
    assert changelog_reaches(settings, topic, 0, 1)
    assert not changelog_reaches(settings, topic, 0, RECORDS + 1)
    assert not changelog_reaches(settings, topic, 0, RECORDS + 1_000)


def test_a_store_left_by_a_rebuild_is_reused_after_a_sigkill(
    settings: Settings, pipeline: Pipeline
) -> None:
    """The rebuild's checkpoint is the changelog's true end, above the dev broker's
    reported high; the restarted processor must read on from it, not rebuild."""
    fill_changelog(settings, 3_000, int(time.time() * 1000) + 86_400_000)  # big batches
    first = pipeline.start("processor")
    pipeline.wait_for_log(first, "assigned [0", timeout_s=60)
    pipeline.kill(first)  # before any step could record a checkpoint of its own
    again = pipeline.restart(first)
    pipeline.wait_for_log(again, "assigned [0", timeout_s=60)
    starts = re.findall(r"restored \S+\[(\d)\] from offset (\S+)", again.log_text())
    assert sorted(p for p, _ in starts) == [str(p) for p in range(settings.partitions or 0)]
    assert all(start != "the" for _, start in starts), again.log_text()[-3000:]
