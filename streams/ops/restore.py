"""Fill a fresh embedded broker from the kept log, before any role starts.

Every kept record is produced again to its partition, oldest first (one
idempotent producer: the order within a partition holds). The kept records
are then renumbered to their new offsets, and each consumer is told where to
resume: the processors' and dispatchers' groups get committed offsets on the
fresh broker, the API's projector gets its offsets rewritten in the read
model. A consumer resumes at the first restored record at or past its old
position (:func:`streams.ops.durable.translate`), so what it had already
handled is not handled again, and what it had not is.

Group offsets come from the keeper's last complete prune cycle, which may be
a little behind: the processors may then apply a few commands again, which
the command ids make harmless, and the dispatchers see a few firings again,
which the history store's fire ids skip.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from streams.config import Settings, kafka_config, producer_config
from streams.ops.durable import KeptLog, Partition, translate
from streams.ops.keeper import DEV_PROJECTOR, projector_offsets
from streams.views.sqlitefile import locked_transaction, open_shared_file

log = logging.getLogger(__name__)


@dataclass
class RestoreReport:
    records: int = 0
    partitions: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        return (
            f"restored {self.records} kept records to {self.partitions} partitions "
            f"in {self.seconds:.1f} s"
        )


def restore_broker(settings: Settings, kept: KeptLog) -> RestoreReport:
    started = time.monotonic()
    report = RestoreReport()
    producer = Producer(producer_config(settings, "keeper-restore", **{"linger.ms": 20}))
    truncated = kept.truncate_state()
    if truncated:
        log.info("restore: %d state records past the last consistent cut left out", truncated)
    group_committed = kept.committed()
    projector = projector_offsets(settings, DEV_PROJECTOR)
    moved_groups: dict[str, list[TopicPartition]] = {}
    moved_projector: list[tuple[int, str, int]] = []
    new_ends: dict[Partition, int] = {}
    restored: set[Partition] = set()
    for topic, part in kept.partitions():
        old, new = _produce_partition(producer, kept, topic, part)
        kept.renumber(topic, part, old, new)
        new_ends[(topic, part)] = new[-1] + 1 if new else 0
        restored.add((topic, part))
        report.records += len(old)
        report.partitions += 1
        for (name, t, p), offset in group_committed.items():
            if (t, p) == (topic, part):
                moved_groups.setdefault(name, []).append(
                    TopicPartition(t, p, translate(old, new, offset))
                )
        for (_, t, p), offset in projector.items():
            if (t, p) == (topic, part):
                moved_projector.append((translate(old, new, offset), t, p))
    # The projector read partitions of which nothing was kept: it resumes at their start.
    moved_projector.extend((0, t, p) for (_, t, p) in projector if (t, p) not in restored)
    _commit_groups(settings, moved_groups)
    _rewrite_projector(settings, moved_projector)
    kept.reset_positions(new_ends)
    report.seconds = time.monotonic() - started
    return report


def _produce_partition(
    producer: Producer, kept: KeptLog, topic: str, part: int
) -> tuple[list[int], list[int]]:
    old: list[int] = []
    new: list[int] = []
    failures: list[str] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failures.append(str(error))
        else:
            new.append(message.offset() or 0)

    for record in kept.records(topic, part):
        old.append(record.offset)
        headers: list[tuple[str, str | bytes | None]] = list(record.headers or [])
        while True:
            try:
                # The record's own timestamp: replay tools select firings by time.
                producer.produce(
                    topic,
                    value=record.value,
                    key=record.key,
                    partition=part,
                    headers=headers,
                    timestamp=record.timestamp_ms,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0 or failures or len(new) != len(old):
        raise RuntimeError(
            f"restoring {topic}[{part}]: {len(new)} of {len(old)} records delivered "
            f"({'; '.join(failures[:3])})"
        )
    return old, sorted(new)


def _commit_groups(settings: Settings, moved: dict[str, list[TopicPartition]]) -> None:
    for group, offsets in moved.items():
        offsets = [tp for tp in offsets if tp.offset > 0]
        if not offsets:
            continue
        committer = Consumer(kafka_config(settings, "keeper-restore", **{"group.id": group}))
        try:
            committer.commit(offsets=offsets, asynchronous=False)
        finally:
            committer.close()
        log.info("restore: group %s resumes at %d partitions' kept offsets", group, len(offsets))


def _rewrite_projector(settings: Settings, moved: list[tuple[int, str, int]]) -> None:
    if not moved:
        return
    conn = open_shared_file(settings.history_db_path)
    try:
        with locked_transaction(conn, threading.Lock()):
            conn.executemany(
                "UPDATE rm_offsets SET next_offset = ? "
                "WHERE projector = ? AND topic = ? AND partition = ?",
                [(o, DEV_PROJECTOR, t, p) for o, t, p in moved],
            )
    finally:
        conn.close()
