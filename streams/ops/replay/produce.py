"""Write a replay's records and make sure every one reached the broker."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, Message, Producer

from streams.config import Settings, producer_config

# (partition, key, value); a None value is a tombstone.
Record = tuple[int, bytes, bytes | None]
# The same with headers (name, value).
HeadedRecord = tuple[int, bytes, bytes | None, list[tuple[str, str | bytes | None]]]


def produce_all(settings: Settings, topic: str, records: Iterable[Record | HeadedRecord]) -> int:
    """Produce to explicit partitions (a task's partition never changes); returns the
    count. Raises if any record failed: the caller's replay is safe to run again."""
    producer = Producer(producer_config(settings, "replay"))
    errors: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    count = 0
    for record in records:
        partition, key, value = record[:3]
        headers = record[3] if len(record) > 3 else None
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=partition,
                    headers=headers,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let it drain
        count += 1
    remaining = producer.flush(30)
    if remaining or errors:
        raise RuntimeError(
            f"{len(errors)} records to {topic} failed ({errors[:3]}), {remaining} undelivered; "
            "run the replay again: it is safe to repeat"
        )
    return count
