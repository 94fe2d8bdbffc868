"""The windowed scan under every replay, on the broker: exactly the records whose
own timestamps are in the window, whatever offsets_for_times answers; drained
partitions end the scan; a partition stops once it is well past the window."""

from __future__ import annotations

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.config import Settings, kafka_config, producer_config
from streams.ops.replay.scan import PAST_END_SLACK_MS, ScanStats, scan_window
from streams.ops.replay.window import Window

BASE_MS = 1_700_000_000_000
RECORDS = 3_000
STEP_MS = 1_000  # one record a second: 50 minutes of records


def test_scan_reads_exactly_the_window(settings: Settings) -> None:
    topic = settings.topic("scan")
    admin = AdminClient(kafka_config(settings, "test"))
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result()
    producer = Producer(producer_config(settings, "test"))
    for i in range(RECORDS):
        producer.produce(
            topic, value=str(i).encode(), key=str(i).encode(), timestamp=BASE_MS + i * STEP_MS
        )
    assert producer.flush(10) == 0

    def scan(window: Window) -> tuple[list[int], ScanStats]:
        stats = ScanStats()
        found = [
            int(m.value() or b"")
            for batch in scan_window(settings, topic, window, stats, progress=False)
            for m in batch
        ]
        return sorted(found), stats

    everything, _ = scan(Window())
    assert everything == list(range(RECORDS))

    inside, stats = scan(Window(BASE_MS + 100 * STEP_MS, BASE_MS + 700 * STEP_MS))
    assert inside == list(range(100, 701))
    # Each partition stopped soon after the end plus the slack, not at the topic's end.
    assert stats.read < 700 + PAST_END_SLACK_MS // STEP_MS + 3 * 10

    after_everything, stats = scan(Window(BASE_MS + RECORDS * STEP_MS, None))
    assert after_everything == []
    assert stats.in_window == 0
