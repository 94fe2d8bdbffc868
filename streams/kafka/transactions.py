"""One Kafka transaction step, and the one error taxonomy both roles use.

The processor and the dispatcher both commit a step the same way::

    begin -> produce the outputs -> send_offsets_to_transaction -> commit

and both read a failure the same way (:func:`classify`):

* **abortable** (``txn_requires_abort``): flush, abort, raise
  :class:`TransactionAborted`. Nothing of the step is committed; the caller
  rewinds its consumer to the committed offsets and does the work again.
* **retriable**: the failing call is retried a bounded number of times. A
  ``send_offsets_to_transaction`` (or a produce) still failing after that is
  handled as abortable: abort and rewind redoes the step from a known state,
  which is always safe, whereas ending the process would also be safe but
  costs a restart and a restore for what is usually a slow broker. (Until this
  module the dispatcher exited on it and the processor aborted; both abort now.)
  A ``commit_transaction`` still failing after its retries is the exception:
  the process no longer knows whether its writes landed while it holds
  partitions nobody else can fire, and on the dev broker that is how a fenced
  producer shows (it drops the connection instead of answering
  PRODUCER_FENCED), so it is fatal, as docs/processor.md explains.
* **fatal** (fenced by a newer process in the same slot, or any other error):
  :class:`FatalKafkaError`. The process must not write again; the role exits 1
  and its supervisor restarts it, which fences and restores cleanly.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.core.errors import KronwheelError
from streams.ports import OutRecord, TransactionalProducer

log = logging.getLogger(__name__)

T = TypeVar("T")

# Attempts per call for a retriable error before the step gives up on it.
RETRY_ATTEMPTS = 3
TXN_TIMEOUT_S = 30.0
# How long a full local queue is given to drain before the produce is tried again.
QUEUE_FULL_POLL_S = 0.05


class TransactionAborted(KronwheelError):
    """The transaction was aborted: nothing of it is committed. Rewind and redo."""


class FatalKafkaError(KronwheelError):
    """Fenced, or an error the client cannot recover from: this process must not
    write again. The role exits 1; its supervisor restarts it."""

    @classmethod
    def of(cls, error: KafkaError, what: str) -> FatalKafkaError:
        return cls(f"{what}: {error}")


class ErrorKind(enum.Enum):
    ABORTABLE = "abortable"
    RETRIABLE = "retriable"
    FATAL = "fatal"


def classify(error: KafkaError) -> ErrorKind:
    if error.fatal():
        return ErrorKind.FATAL
    if error.txn_requires_abort():
        return ErrorKind.ABORTABLE
    if error.retriable():
        return ErrorKind.RETRIABLE
    return ErrorKind.FATAL


def produce_retrying(
    producer: Any,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    *,
    headers: Sequence[tuple[str, str | bytes | None]] | None = None,
    partition: int | None = None,
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    """Produce one record, waiting for room when the client's local queue is full.

    The one "queue full -> poll and retry" loop: the transaction step and
    :class:`streams.kafka.clients.AsyncProducer` both send through it.
    """
    kwargs: dict[str, Any] = {"value": value, "key": key}
    if headers:
        kwargs["headers"] = list(headers)
    if partition is not None:
        kwargs["partition"] = partition
    if on_delivery is not None:
        kwargs["on_delivery"] = on_delivery
    while True:
        try:
            producer.produce(topic, **kwargs)
            return
        except BufferError:
            # The local queue is full: serve delivery reports so it drains, then retry.
            producer.poll(QUEUE_FULL_POLL_S)


def run_transaction(
    producer: TransactionalProducer,
    outputs: Iterable[OutRecord],
    offsets: Sequence[TopicPartition],
    group_metadata: object,
    timeout_s: float = TXN_TIMEOUT_S,
    attempts: int = RETRY_ATTEMPTS,
) -> None:
    """Write ``outputs`` and commit ``offsets`` (next offsets to read) in one transaction.

    Returns when committed; raises :class:`TransactionAborted` after aborting,
    or :class:`FatalKafkaError` (see the module docstring for which is which).
    """
    try:
        producer.begin_transaction()
    except KafkaException as exc:
        # No transaction is open, so there is nothing to abort: a refused begin
        # means a fenced or broken producer.
        raise FatalKafkaError.of(exc.args[0], "begin_transaction") from exc
    try:
        for record in outputs:
            produce_retrying(
                producer,
                record.topic,
                record.key,
                record.value,
                headers=record.headers,
                partition=record.partition,
            )
        if offsets:
            _retrying(
                lambda: producer.send_offsets_to_transaction(
                    list(offsets), group_metadata, timeout_s
                ),
                "send_offsets_to_transaction",
                attempts,
            )
    except KafkaException as exc:
        error: KafkaError = exc.args[0]
        if classify(error) is ErrorKind.FATAL:
            raise FatalKafkaError.of(error, "transaction") from exc
        _abort(producer, error, timeout_s)
        raise TransactionAborted(str(error)) from exc
    try:
        _retrying(lambda: producer.commit_transaction(timeout_s), "commit_transaction", attempts)
    except KafkaException as exc:
        error = exc.args[0]
        if classify(error) is ErrorKind.ABORTABLE:
            _abort(producer, error, timeout_s)
            raise TransactionAborted(str(error)) from exc
        # Fatal, or still retriable after every attempt: see the module docstring.
        raise FatalKafkaError.of(error, "commit_transaction") from exc


def _retrying(call: Callable[[], T], what: str, attempts: int) -> T:
    """Run ``call``, again on a retriable error, at most ``attempts`` times; the last
    error is raised as it came."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if classify(error) is not ErrorKind.RETRIABLE or attempt == attempts:
                raise
            log.warning("%s retried (%d of %d): %s", what, attempt, attempts, error)
    raise AssertionError("unreachable")  # pragma: no cover


def _abort(producer: TransactionalProducer, error: KafkaError, timeout_s: float) -> None:
    log.warning("transaction aborted: %s", error)
    try:
        # On the dev broker only flushed records are ever written; flushing first
        # makes an abort behave the same there and on Kafka (DEV-BROKER.md).
        producer.flush(timeout_s)
        producer.abort_transaction(timeout_s)
    except KafkaException as exc:
        raise FatalKafkaError.of(exc.args[0], "abort_transaction") from exc


def flush_quietly(producer: Any, timeout_s: float) -> None:
    """Flush on the way out. A fenced producer's flush raises its fatal error again,
    which would hide the error the role is stopping for (and its exit path)."""
    try:
        producer.flush(timeout_s)
    except KafkaException as exc:
        log.warning("flush on close failed: %s", exc.args[0])
