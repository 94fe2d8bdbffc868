"""An in-memory Kafka log for driving whole roles in process (no broker, no threads
of its own, no waiting).

* :class:`MemLog`: topics of partitions, each a list of committed records;
  consumer groups' committed offsets. Only committed transactions reach it, so
  every reader is read_committed (as on Apache Kafka; the dev broker differs).
* :class:`MemProducer`: the transactional producer the real transaction step
  (streams.kafka.transactions.run_transaction) drives: records and offsets are
  buffered in the open transaction and land together on commit, or never.
  Faults are injected per call (produce, send_offsets, commit) as the real
  client's KafkaException: abortable, retriable, or fenced (fatal, and the
  producer stays fenced); or the process dies there (:class:`ProcessKilled`,
  a SIGKILL: before the call takes effect, or for a commit also just after).
* :class:`MemKafka`: one group member's Kafka side; it satisfies both
  streams.ports.ProcessorKafka and streams.ports.DispatcherKafka. Rebalances
  are scripted by the test and delivered inside the next poll, before or after
  its records are fetched (a revoke "in the middle of a poll" returns records
  of a partition the member no longer owns). It notes what each poll
  delivered and returned, so a test can mirror the member's work in a model.
"""

from __future__ import annotations

import enum
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams.kafka.transactions import run_transaction
from streams.ports import OutRecord, Rebalance


@dataclass(frozen=True, slots=True)
class MemMessage:
    """A consumed record (satisfies streams.ports.ConsumedMessage)."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _headers: list[tuple[str, bytes]] | None = None

    def topic(self) -> str | None:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> object:
        return self._headers

    def error(self) -> KafkaError | None:
        return None


class ProcessKilled(BaseException):
    """The process died here (a SIGKILL): nothing may catch it on the way out, so
    it is not an Exception. The test drops the process without closing it."""


class MemLog:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._topics: dict[str, list[list[MemMessage]]] = {}
        self._committed: dict[tuple[str, str, int], int] = {}  # (group, topic, partition)
        self.transactions = 0  # committed so far

    def create_topic(self, name: str, partitions: int) -> None:
        with self._lock:
            self._topics.setdefault(name, [[] for _ in range(partitions)])

    def partitions(self, topic: str) -> int:
        return len(self._topics[topic])

    def partition_for(self, topic: str, key: bytes | None) -> int:
        return zlib.crc32(key or b"") % self.partitions(topic)

    def append(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Sequence[tuple[str, Any]] | None = None,
    ) -> tuple[int, int]:
        """Write one committed record (a plain producer); returns (partition, offset)."""
        with self._lock:
            number = self.partition_for(topic, key) if partition is None else partition
            records = self._topics[topic][number]
            message = MemMessage(
                topic, number, len(records), key, value, list(headers) if headers else None
            )
            records.append(message)
            return number, message._offset

    def read(self, topic: str, partition: int, start: int = 0) -> list[MemMessage]:
        with self._lock:
            return list(self._topics[topic][partition][start:])

    def records(self, topic: str) -> list[MemMessage]:
        """Every committed record of a topic, partition by partition."""
        with self._lock:
            return [m for records in self._topics[topic] for m in records]

    def committed(self, group: str, topic: str, partition: int) -> int | None:
        with self._lock:
            return self._committed.get((group, topic, partition))

    def commit(
        self, group: str, records: Sequence[OutRecord], offsets: Sequence[TopicPartition]
    ) -> None:
        """A transaction's records and offsets, visible together."""
        with self._lock:
            for record in records:
                self.append(
                    record.topic, record.key, record.value, record.partition, record.headers
                )
            for tp in offsets:
                self._committed[(group, tp.topic, tp.partition)] = tp.offset
            self.transactions += 1


class Fault(enum.Enum):
    ABORTABLE = "abortable"
    RETRIABLE = "retriable"
    FENCED = "fenced"
    KILLED = "killed"  # the process dies before the call takes effect
    KILLED_AFTER = "killed after"  # ... just after it (a commit has landed)

    def error(self, call: str) -> KafkaException:
        if self is Fault.ABORTABLE:
            return KafkaException(
                KafkaError(
                    KafkaError._STATE, f"{call}: injected abortable", txn_requires_abort=True
                )
            )
        if self is Fault.RETRIABLE:
            return KafkaException(
                KafkaError(KafkaError._TIMED_OUT, f"{call}: injected retriable", retriable=True)
            )
        return KafkaException(KafkaError(KafkaError._FENCED, f"{call}: fenced", fatal=True))


class MemProducer:
    """A transactional producer over a MemLog (see the module docstring)."""

    def __init__(self, log: MemLog, group: str) -> None:
        self._log = log
        self._group = group
        self._records: list[OutRecord] | None = None
        self._offsets: list[TopicPartition] = []
        self._faults: dict[str, deque[Fault]] = {
            "produce": deque(),
            "send_offsets": deque(),
            "commit": deque(),
        }
        self.fenced = False
        self.calls: list[str] = []  # begin, produce, send_offsets, commit, abort, flush

    def fail(self, call: str, fault: Fault, times: int = 1) -> None:
        """The next ``times`` calls of ``call`` (produce, send_offsets, commit) raise."""
        self._faults[call].extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget faults not yet raised (the step they were meant for wrote nothing)."""
        for faults in self._faults.values():
            faults.clear()

    def _check(self, call: str) -> bool:
        """Raise the call's next fault; True when the process must die after the call."""
        self.calls.append(call)
        if self.fenced:
            raise Fault.FENCED.error(call)
        faults = self._faults.get(call)
        if not faults:
            return False
        fault = faults.popleft()
        if fault is Fault.KILLED_AFTER:
            return True
        if fault is Fault.KILLED:
            raise ProcessKilled(call)
        if fault is Fault.FENCED:
            self.fenced = True
        raise fault.error(call)

    def begin_transaction(self) -> None:
        self._check("begin")
        if self._records is not None:
            raise KafkaException(KafkaError(KafkaError._STATE, "a transaction is open"))
        self._records, self._offsets = [], []

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        partition: int = -1,
        on_delivery: Callable[[Any, Any], None] | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        self._check("produce")
        assert self._records is not None, "produce outside a transaction"
        number = None if partition < 0 else partition
        self._records.append(OutRecord(topic, key, value, headers, number))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        self.calls.append("flush")
        return 0

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = 0
    ) -> None:
        self._check("send_offsets")
        self._offsets = list(positions)

    def commit_transaction(self, timeout: float = 0) -> None:
        dies_after = self._check("commit")
        assert self._records is not None, "commit outside a transaction"
        self._log.commit(self._group, self._records, self._offsets)
        self._records, self._offsets = None, []
        if dies_after:
            raise ProcessKilled("after commit")

    def abort_transaction(self, timeout: float = 0) -> None:
        self.calls.append("abort")
        self._records, self._offsets = None, []


@dataclass
class _Rebalance:
    kind: str  # assign, revoke, lost
    partitions: list[int]
    after_fetch: bool


@dataclass
class MemKafka:
    """One group member's Kafka side over a MemLog (ProcessorKafka and DispatcherKafka)."""

    log: MemLog
    topic: str
    group: str
    changelog_topic: str | None = None
    producer: MemProducer = field(init=False)
    owned: list[int] = field(default_factory=list)
    positions_: dict[int, int] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)  # as a consumer's pause(): not fetched
    polls: int = 0
    changelog_reads: list[tuple[int, int | None]] = field(default_factory=list)  # (p, start)
    # What the last poll did: the rebalances it delivered, in order, as (kind,
    # partitions, after the fetch), and the records it returned.
    delivered: list[tuple[str, list[int], bool]] = field(default_factory=list)
    returned: list[MemMessage] = field(default_factory=list)
    # A restore dies after reading this many changelog records (None: it does not).
    kill_in_restore_after: int | None = None
    # As the dev broker: the reported changelog high watermark falls this far short.
    changelog_high_short_by: int = 0
    _callbacks: dict[str, Rebalance] = field(default_factory=dict)
    _script: deque[_Rebalance] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.producer = MemProducer(self.log, self.group)

    # --- the test's script ------------------------------------------------------

    def assign(self, partitions: Sequence[int], after_fetch: bool = False) -> None:
        self._script.append(_Rebalance("assign", list(partitions), after_fetch))

    def revoke(self, partitions: Sequence[int], after_fetch: bool = True) -> None:
        self._script.append(_Rebalance("revoke", list(partitions), after_fetch))

    def lose(self, partitions: Sequence[int], after_fetch: bool = True) -> None:
        self._script.append(_Rebalance("lost", list(partitions), after_fetch))

    # --- streams.ports.RoleKafka ------------------------------------------------

    def subscribe(self, on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        self._callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def poll(self, max_messages: int, timeout_s: float) -> list[MemMessage]:
        self.polls += 1
        self.delivered, self.returned = [], []
        self._deliver(after_fetch=False)
        messages: list[MemMessage] = []
        for partition in sorted(self.owned):
            if partition not in self.paused:
                start = self.positions_[partition]
                batch = self.log.read(self.topic, partition, start)[: max_messages - len(messages)]
                messages.extend(batch)
                self.positions_[partition] = start + len(batch)
        self._deliver(after_fetch=True)
        self.returned = messages
        return messages

    def _deliver(self, after_fetch: bool) -> None:
        while self._script and self._script[0].after_fetch == after_fetch:
            event = self._script.popleft()
            self.delivered.append((event.kind, list(event.partitions), after_fetch))
            if event.kind == "assign":
                for p in event.partitions:
                    self.owned.append(p)
                    self.paused.discard(p)  # as on Kafka: an assigned partition starts unpaused
                    self.positions_[p] = self.log.committed(self.group, self.topic, p) or 0
                self._callbacks["assign"](list(event.partitions))
            else:
                # Kafka runs the callback while the member still holds the partitions.
                self._callbacks[event.kind](list(event.partitions))
                for p in event.partitions:
                    if p in self.owned:
                        self.owned.remove(p)
                    self.positions_.pop(p, None)
                    self.paused.discard(p)  # a new assignment starts unpaused

    def transact(self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]) -> None:
        run_transaction(
            self.producer,
            outputs,
            [TopicPartition(self.topic, p, o) for p, o in sorted(offsets.items())],
            self.group,
        )

    def rewind(self, partitions: Sequence[int]) -> None:
        for p in partitions:
            if p in self.owned:
                self.positions_[p] = self.log.committed(self.group, self.topic, p) or 0

    def close(self) -> None:
        if self.owned and self._callbacks:
            self._callbacks["revoke"](sorted(self.owned))
        self.owned.clear()

    # --- streams.ports.ProcessorKafka ---------------------------------------------

    def positions(self, partitions: Sequence[int]) -> dict[int, int]:
        return {p: self.positions_[p] for p in partitions if p in self.positions_}

    @property
    def paused_partitions(self) -> set[int]:
        return self.paused

    def pause_partitions(self, partitions: Sequence[int]) -> None:
        self.paused.update(p for p in partitions if p in self.owned)

    def resume_partitions(self, partitions: Sequence[int]) -> None:
        self.paused.difference_update(partitions)

    def read_changelog(self, partition: int, start: int | None = None) -> Iterator[MemMessage]:
        assert self.changelog_topic is not None
        self.changelog_reads.append((partition, start))
        records = self.log.read(self.changelog_topic, partition, start or 0)
        if self.kill_in_restore_after is None:
            return iter(records)
        return self._dying(records, self.kill_in_restore_after)

    @staticmethod
    def _dying(records: list[MemMessage], after: int) -> Iterator[MemMessage]:
        yield from records[:after]
        raise ProcessKilled("restoring")

    def changelog_watermarks(self, partition: int) -> tuple[int, int]:
        assert self.changelog_topic is not None
        end = len(self.log.read(self.changelog_topic, partition))
        return 0, max(end - self.changelog_high_short_by, 0)

    def changelog_reaches(self, partition: int, offset: int) -> bool:
        assert self.changelog_topic is not None
        return len(self.log.read(self.changelog_topic, partition)) >= offset

    # --- streams.ports.DispatcherKafka --------------------------------------------

    def pause(self, partitions: Sequence[int]) -> None:
        self.paused = set(partitions)

    def last_poll_monotonic(self) -> float:
        return float(self.polls)

    def broker_connected(self) -> bool:
        return True  # the in-memory log is always there
