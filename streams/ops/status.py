"""``kronwheel status``: what an operator checks first, as tables.

* consumer lag per group and partition: processors on tasks.commands,
  dispatchers on tasks.due (committed offset against the partition's end);
* pending tasks per partition: the latest state of every task in the
  changelog tasks.state, by status (scheduled and paused are pending; a
  finished task stays while retries of its last run may come). This is the
  committed truth of every processor, readable while processors are down or
  moving, with no need to find them (their /metrics gauges
  kronwheel_wheel_timers / kronwheel_index_tasks show it per process);
* the dead-letter topic's size.

End offsets are read, not asked for: the dev broker answers an end-offset
query with the start of the last batch + 1, so each partition's last batch is
read to its end (streams.kafka.reading) and the high watermark of that fetch
is used (right on every broker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.config import Settings, kafka_config
from streams.core.errors import MalformedEvent
from streams.core.events import TaskStatus
from streams.kafka.reading import ToEnd
from streams.kafka.records import decode_state
from streams.kafka.topics import COMMANDS, DEAD, DUE, STATE
from streams.ops.replay.scan import ScanStats, scan_consumer, scan_window
from streams.ops.replay.window import Window
from streams.ops.tables import render_table

END_READ_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class LagRow:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int


def partition_ends(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) watermark per partition, the high one checked by a fetch."""
    consumer = scan_consumer(settings, "status")
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"topic {topic}: {metadata.error}")
        ends: dict[int, tuple[int, int]] = {}
        to_read = []
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = (low, high)
            if high > low:
                to_read.append(TopicPartition(topic, partition, max(low, high - 1)))
        if not to_read:
            return ends
        reader = ToEnd(
            consumer,
            topic,
            {tp.partition: tp.offset for tp in to_read},
            give_up_idle_s=END_READ_TIMEOUT_S,
            batch=1000,
        )
        for _ in reader.batches():
            pass  # only the ends are wanted
        for partition, high in reader.ends.items():
            if high >= 0:
                ends[partition] = (ends[partition][0], max(high, ends[partition][1]))
        return ends
    finally:
        consumer.close()


def consumer_lag(settings: Settings, group: str, topic: str) -> list[LagRow]:
    ends = partition_ends(settings, topic)
    # A consumer that never subscribes reads the group's commits without joining it.
    reader = Consumer(kafka_config(settings, "status", **{"group.id": group}))
    try:
        committed = reader.committed([TopicPartition(topic, p) for p in sorted(ends)], timeout=10)
    finally:
        reader.close()
    rows = []
    for tp in committed:
        low, high = ends[tp.partition]
        position = tp.offset if tp.offset >= 0 else None
        lag = high - (position if position is not None else low)
        rows.append(LagRow(group, topic, tp.partition, position, high, max(0, lag)))
    return rows


@dataclass
class PendingRow:
    scheduled: int = 0
    paused: int = 0
    # Finished, kept in state while retries of its last run may still come.
    finishing: int = 0


def pending_tasks(settings: Settings, progress: bool) -> dict[int, PendingRow]:
    """Per partition, the tasks whose latest changelog record is a live state."""
    latest: dict[tuple[int, bytes], bytes | None] = {}
    for batch in scan_window(
        settings, settings.topic(STATE), Window(), ScanStats(), progress=progress, purpose="status"
    ):
        for message in batch:
            latest[(message.partition() or 0, message.key() or b"")] = message.value()
    rows = {p: PendingRow() for p in partition_ends(settings, settings.topic(STATE))}
    for (partition, _), value in latest.items():
        if value is None:
            continue
        try:
            status = decode_state(value).status
        except MalformedEvent:
            continue
        row = rows.setdefault(partition, PendingRow())
        if status is TaskStatus.SCHEDULED:
            row.scheduled += 1
        elif status is TaskStatus.PAUSED:
            row.paused += 1
        elif status is TaskStatus.COMPLETED:
            row.finishing += 1
    return rows


def dead_letter_count(settings: Settings) -> int:
    return sum(high - low for low, high in partition_ends(settings, settings.topic(DEAD)).values())


def render_status(settings: Settings, progress: bool = False) -> str:
    from streams.dispatch import group_id as dispatcher_group
    from streams.timewheel import group_id as processor_group

    groups: list[tuple[Callable[[Settings], str], str]] = [
        (processor_group, COMMANDS),
        (dispatcher_group, DUE),
    ]
    lag_rows = [
        row
        for group_of, topic in groups
        for row in consumer_lag(settings, group_of(settings), settings.topic(topic))
    ]
    pending = pending_tasks(settings, progress)
    dead = dead_letter_count(settings)
    sections = [
        "consumer lag",
        render_table(
            ["group", "topic", "partition", "committed", "end", "lag"],
            [(r.group, r.topic, r.partition, r.committed, r.end, r.lag) for r in lag_rows],
        ),
        "",
        f"pending tasks (latest state per task in {settings.topic(STATE)})",
        render_table(
            ["partition", "scheduled", "paused", "finishing", "pending"],
            [
                *(
                    (p, r.scheduled, r.paused, r.finishing, r.scheduled + r.paused)
                    for p, r in sorted(pending.items())
                ),
                (
                    "total",
                    sum(r.scheduled for r in pending.values()),
                    sum(r.paused for r in pending.values()),
                    sum(r.finishing for r in pending.values()),
                    sum(r.scheduled + r.paused for r in pending.values()),
                ),
            ],
        ),
        "",
        "dead letters",
        render_table(["topic", "records"], [(settings.topic(DEAD), dead)]),
    ]
    return "\n".join(sections)
