"""Reading one changelog partition from an offset: what an incremental restore reads."""

from __future__ import annotations

from streams.config import Settings
from streams.kafka.topics import STATE, ensure_topics
from streams.ops.replay.produce import produce_all
from streams.wheel.changelog import ReadPosition, read_partition, watermarks


def test_a_read_from_the_recorded_offset_returns_only_the_tail(settings: Settings) -> None:
    ensure_topics(settings)
    topic = settings.topic(STATE)
    produce_all(settings, topic, [(1, f"k{n}".encode(), b"v") for n in range(5)])
    first = ReadPosition()
    assert [k for k, _, _ in read_partition(settings, topic, 1, position_out=first)] == [
        f"k{n}".encode() for n in range(5)
    ]
    assert first.next_offset >= 5
    low, _ = watermarks(settings, topic, 1)
    assert low <= first.next_offset
    produce_all(settings, topic, [(1, b"later", None), (1, b"k0", b"v2")])
    tail = ReadPosition()
    records = list(
        read_partition(settings, topic, 1, start_offset=first.next_offset, position_out=tail)
    )
    assert [(k, v) for k, v, _ in records] == [(b"later", None), (b"k0", b"v2")]
    assert tail.next_offset > first.next_offset
    assert list(read_partition(settings, topic, 1, start_offset=tail.next_offset)) == []
