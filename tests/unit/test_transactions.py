"""The one transaction step and its error taxonomy, on the in-memory producer."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka.transactions import (
    ErrorKind,
    FatalKafkaError,
    TransactionAborted,
    classify,
    flush_quietly,
    produce_retrying,
    run_transaction,
)
from streams.ports import OutRecord
from tests.support.memlog import Fault, MemLog, MemProducer

OFFSETS = [TopicPartition("in", 0, 5)]
OUT = [OutRecord("out", b"k", b"v", partition=0)]


def world() -> tuple[MemLog, MemProducer]:
    log = MemLog()
    log.create_topic("out", 1)
    return log, MemProducer(log, "g")


def test_errors_are_classified_once() -> None:
    fenced = KafkaError(KafkaError._FENCED, "f", fatal=True, txn_requires_abort=True)
    assert classify(fenced) is ErrorKind.FATAL  # fatal wins over everything
    assert classify(KafkaError(KafkaError._STATE, "a", txn_requires_abort=True)) is (
        ErrorKind.ABORTABLE
    )
    assert classify(KafkaError(KafkaError._TIMED_OUT, "r", retriable=True)) is ErrorKind.RETRIABLE
    assert classify(KafkaError(KafkaError._STATE, "unknown")) is ErrorKind.FATAL


@pytest.mark.parametrize("call", ["produce", "send_offsets", "commit"])
def test_an_abortable_error_anywhere_aborts_and_writes_nothing(call: str) -> None:
    log, producer = world()
    producer.fail(call, Fault.ABORTABLE)
    with pytest.raises(TransactionAborted):
        run_transaction(producer, OUT, OFFSETS, "g")
    assert producer.calls[-2:] == ["flush", "abort"]  # flushed first, for the dev broker
    assert log.records("out") == []
    assert log.committed("g", "in", 0) is None


@pytest.mark.parametrize("call", ["produce", "send_offsets", "commit"])
def test_fenced_is_fatal_and_never_aborts(call: str) -> None:
    log, producer = world()
    producer.fail(call, Fault.FENCED)
    with pytest.raises(FatalKafkaError):
        run_transaction(producer, OUT, OFFSETS, "g")
    assert "abort" not in producer.calls
    assert log.records("out") == []


def test_retriable_calls_are_retried_then_commit() -> None:
    log, producer = world()
    producer.fail("send_offsets", Fault.RETRIABLE, times=2)
    producer.fail("commit", Fault.RETRIABLE, times=2)
    run_transaction(producer, OUT, OFFSETS, "g", attempts=3)
    assert [m.value() for m in log.records("out")] == [b"v"]
    assert log.committed("g", "in", 0) == 5


def test_send_offsets_still_retriable_aborts_but_commit_still_retriable_is_fatal() -> None:
    _, producer = world()
    producer.fail("send_offsets", Fault.RETRIABLE, times=3)
    with pytest.raises(TransactionAborted):
        run_transaction(producer, OUT, OFFSETS, "g", attempts=3)
    producer.fail("commit", Fault.RETRIABLE, times=3)
    with pytest.raises(FatalKafkaError):
        run_transaction(producer, OUT, OFFSETS, "g", attempts=3)


class QueueFullOnce:
    def __init__(self) -> None:
        self.full = True
        self.sent: list[dict[str, Any]] = []
        self.polls = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.full:
            self.full = False
            raise BufferError("Local: Queue full")
        self.sent.append({"topic": topic, **kwargs})

    def poll(self, timeout: float) -> int:
        self.polls += 1
        return 0


def test_a_full_queue_is_polled_and_the_record_sent_again() -> None:
    producer = QueueFullOnce()
    produce_retrying(producer, "t", b"k", b"v", headers=[("h", b"1")], partition=2)
    assert producer.polls == 1
    assert producer.sent == [
        {"topic": "t", "key": b"k", "value": b"v", "headers": [("h", b"1")], "partition": 2}
    ]


def test_a_fenced_producers_flush_on_close_does_not_hide_why_the_role_stops() -> None:
    class FencedProducer:
        def flush(self, timeout: float) -> int:
            raise KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    flush_quietly(FencedProducer(), 1.0)  # logged, not raised
