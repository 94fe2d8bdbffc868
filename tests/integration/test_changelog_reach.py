"""The reach check a restore makes before it reuses a store whose checkpoint lies above
the reported high watermark (the dev broker's is short of the end by up to one batch):
it says yes up to the true end and no past it, on either broker, without reading the
partition from its start."""

from __future__ import annotations

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.config import Settings, consumer_config, kafka_config, producer_config
from streams.wheel.changelog import changelog_reaches

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
