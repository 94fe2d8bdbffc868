"""asyncio over confluent-kafka: a producer whose sends can be awaited.

librdkafka runs its own threads; a small poll thread serves delivery reports
and hands each result to the event loop, so a coroutine can ``await`` that its
record is on the broker (acks=all) before it answers a client or commits.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer


class AsyncProducer:
    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)
        self._stopping = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_loop, name="kafka-producer-poll", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.05)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> asyncio.Future[Message]:
        """Queue one record; the returned future resolves when the broker has it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def delivered(error: Any, message: Message) -> None:
            # Runs on the poll thread: hand over to the loop's thread.
            loop.call_soon_threadsafe(_settle, future, error, message)

        kwargs: dict[str, Any] = {"value": value, "key": key, "on_delivery": delivered}
        if headers:
            kwargs["headers"] = headers
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                return future
            except BufferError:
                # The local queue is full: let librdkafka drain, then retry.
                self._producer.poll(0.01)

    def flush(self, timeout_s: float = 10.0) -> int:
        remaining: int = self._producer.flush(timeout_s)
        return remaining

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        self._stopping.set()
        self._poller.join(timeout=2.0)


def _settle(future: asyncio.Future[Message], error: Any, message: Message) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(KafkaException(error))
    else:
        future.set_result(message)


def consume_batch(consumer: Consumer, max_messages: int, timeout_s: float) -> list[Message]:
    """Wait up to ``timeout_s`` for the first record, then take what is already there.

    ``Consumer.consume(n, timeout)`` waits until it has n records or the timeout
    passes, which adds the whole timeout to every record's latency at low rates.
    """
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    return [first, *consumer.consume(max_messages - 1, 0)]
