"""The interfaces between the core and its adapters, in one module.

Adapters (SQLite, Cassandra, Kafka) import these; nothing here imports an
adapter. Unit tests pass plain objects that satisfy the protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streams.core.attempts import Attempt
from streams.core.events import DueTask, ExecutionResult, TaskCommand, TaskState

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, TopicPartition


@dataclass(frozen=True, slots=True)
class DueSource:
    """Where the due event of a recorded attempt was read: tasks.due partition@offset.

    A dispatcher that meets a recorded fire id again tells a re-delivery of the
    same record (re-emit its outputs) from a duplicate record (skip) by it.
    """

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class RecordedExecution:
    result: ExecutionResult
    source: DueSource | None  # None when recorded without one (a rebuild from tasks.results)


class ExecutionHistory(Protocol):
    """The outcome of every attempt, keyed by fire id (SQLite embedded, Cassandra in production).

    One contract suite (tests/contract/) runs over every implementation.
    """

    def record_executions(
        self,
        results: Sequence[ExecutionResult],
        sources: Mapping[str, DueSource] | None = None,
        contended: bool = True,
    ) -> int:
        """Store outcomes, idempotent by fire id: the first outcome recorded for a fire
        id stays. ``sources`` maps fire id -> its due record. Returns how many were new.

        ``contended=False`` is the caller's word that nobody else can be recording
        these fire ids now: a store may then skip finding out whether its write won
        (Cassandra saves a read) and count every one as new."""
        ...

    def executions(self, task_id: str, limit: int = 100) -> list[ExecutionResult]:
        """One task's attempts, newest first (scheduled time, then attempt)."""
        ...

    def executions_between(
        self, start_ms: int, end_ms: int, limit: int = 10_000
    ) -> list[ExecutionResult]:
        """Attempts scheduled in [start_ms, end_ms), oldest first (for operators' replays)."""
        ...

    def recorded(self, fire_ids: Sequence[str]) -> dict[str, RecordedExecution]:
        """The recorded outcome of each of these fire ids that has one."""
        ...

    def recent_fire_ids(self, partition: int, since_ms: int) -> dict[str, tuple[int, int | None]]:
        """Fire ids recorded from one tasks.due partition and scheduled at or after
        ``since_ms``: fire id -> (scheduled_at_ms, due offset). Loaded on assignment."""
        ...

    def purge_expired(self, before_ms: int) -> int:
        """Apply the retention where the store has no TTL of its own (SQLite):
        delete what is older than ``before_ms``; returns how many rows went."""
        ...

    def close(self) -> None: ...


class KafkaMessage(Protocol):
    """What the core needs of a consumed record (confluent_kafka.Message fits).

    Tests pass plain dataclasses, since confluent_kafka.Message cannot be built
    in Python.
    """

    def topic(self) -> str | None: ...

    def partition(self) -> int | None: ...

    def offset(self) -> int | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...


class ConsumedMessage(KafkaMessage, Protocol):
    """What a role's loop reads from its Kafka side: a record, or an error in its place."""

    def headers(self) -> object:
        """A list of (name, bytes) pairs, or None."""
        ...

    def error(self) -> KafkaError | None: ...


@dataclass(frozen=True, slots=True)
class OutRecord:
    """One record a role writes inside its transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, str | bytes | None]] | None = None
    partition: int | None = None  # None: the partitioner chooses


class TransactionalProducer(Protocol):
    """The part of a transactional confluent_kafka.Producer the transaction step uses
    (streams.kafka.transactions); the in-memory log in tests implements it too."""

    def produce(
        self,
        topic: str,
        value: bytes | None = ...,
        key: bytes | None = ...,
        *,
        partition: int = ...,
        on_delivery: Callable[[Any, Any], None] | None = ...,
        headers: list[tuple[str, str | bytes | None]] | None = ...,
    ) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: Any, timeout: float = ...
    ) -> None: ...

    def commit_transaction(self, timeout: float = ...) -> None: ...

    def abort_transaction(self, timeout: float = ...) -> None: ...


# A rebalance callback: the partition numbers assigned, revoked or lost.
Rebalance = Callable[[list[int]], None]


class RoleKafka(Protocol):
    """A role's Kafka side: one consumer in a group and one transactional producer.

    The real one is built on confluent-kafka from Settings; tests use an
    in-memory log (tests/support/memlog.py). Every call comes from one thread.
    """

    def subscribe(self, on_assign: Rebalance, on_revoke: Rebalance, on_lost: Rebalance) -> None:
        """Fence a predecessor in this slot (init transactions), then join the group.
        The callbacks run inside :meth:`poll`."""
        ...

    def poll(self, max_messages: int, timeout_s: float) -> Sequence[ConsumedMessage]:
        """Wait up to ``timeout_s`` for the first record, then take what is there.
        Raises FatalKafkaError for a fatal consumer error."""
        ...

    def transact(self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]) -> None:
        """Write the outputs and commit ``offsets`` (partition -> next offset to read)
        in one transaction. Raises TransactionAborted (rewind and redo) or
        FatalKafkaError (exit), from streams.kafka.transactions."""
        ...

    def rewind(self, partitions: Sequence[int]) -> None:
        """Seek these partitions back to their committed offsets."""
        ...

    def close(self) -> None:
        """Leave the group (runs the revoke callback) and flush."""
        ...

    def broker_connected(self) -> bool:
        """Whether the client has a live broker connection now (for readiness)."""
        ...


class ProcessorKafka(RoleKafka, Protocol):
    """The processor's Kafka side: tasks.commands in, changelog/due/dead out."""

    def positions(self, partitions: Sequence[int]) -> dict[int, int]:
        """The next offset to read of each of these partitions that has one."""
        ...

    def pause_partitions(self, partitions: Sequence[int]) -> None:
        """Fetch nothing more from these assigned partitions (until resumed); may be
        called inside the assign callback, for the partitions it was given."""
        ...

    def resume_partitions(self, partitions: Sequence[int]) -> None:
        """Fetch again from these partitions, from where they were (the committed
        offset when nothing was read since the assignment)."""
        ...

    def read_changelog(self, partition: int, start: int | None = None) -> Iterator[ConsumedMessage]:
        """Every record of one tasks.state partition from ``start`` (None: its
        beginning), oldest first, to its end."""
        ...

    def changelog_watermarks(self, partition: int) -> tuple[int, int]:
        """(low, high) of one tasks.state partition (on the dev broker, high can
        fall short of the end: a lower bound)."""
        ...

    def changelog_reaches(self, partition: int, offset: int) -> bool:
        """True when one tasks.state partition really holds offsets up to ``offset``
        - 1 (its end is at least ``offset``), found by reading, not by asking for
        the high watermark (which the dev broker reports short)."""
        ...


class DispatcherKafka(RoleKafka, Protocol):
    """The dispatcher's Kafka side: tasks.due in, results/commands/dead out."""

    def pause(self, partitions: Sequence[int]) -> None:
        """Fetch none of these partitions, and every other assigned one."""
        ...

    def last_poll_monotonic(self) -> float:
        """When the last poll returned (for readiness)."""
        ...


class FiringRunner(Protocol):
    """Runs one firing against its target (streams.dispatching.targets.TargetRunner);
    every failure is an outcome, never an exception."""

    async def run(self, due: DueTask) -> Attempt: ...


class OutcomeNotifier(Protocol):
    """Tells a task's notify webhook of a final outcome, fire-and-forget
    (streams.dispatching.notify.Notifier)."""

    def notify(self, due: DueTask, result: ExecutionResult) -> None: ...

    async def close(self, grace_s: float = ...) -> None: ...


# --- the task read model (the API's view, kept from the topics) ------------------


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """One task as the API shows it, projected from tasks.state and tasks.results.

    ``status`` is lower case: scheduled, paused, completed, cancelled, failed.
    """

    task_id: str
    tenant: str
    name: str
    spec: dict[str, Any]  # the REST representation of the TaskSpec
    status: str
    next_fire_ms: int | None
    created_at_ms: int
    updated_at_ms: int
    fire_count: int = 0
    last_fire_id: str | None = None
    last_outcome: str | None = None
    last_finished_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who issued a command, when, and what it changed (from tasks.commands)."""

    command_id: str
    task_id: str
    tenant: str
    kind: str
    issuer: str
    issued_at_ms: int
    changes: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token, known only by its SHA-256: the token itself is shown once."""

    token_hash: str
    tenant: str
    name: str
    admin: bool
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class TaskQuery:
    tenant: str
    statuses: frozenset[str] = frozenset()
    text: str | None = None  # substring of the name or the task id
    limit: int = 50
    # Keyset paging, newest first: strictly older than (created_at_ms, task_id).
    before: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class Projection:
    """One batch read by the projector, applied atomically with its offsets.

    ``states`` keep changelog order; a None state is a tombstone (the task ended).
    ``rejected`` are commands the processors dead-lettered, as (task id, command
    id, reason): the read model keeps nothing of them, waiting requests learn why.
    ``offsets`` are the next offsets to read, per (topic, partition).
    """

    states: tuple[tuple[str, TaskState | None], ...] = ()
    results: tuple[ExecutionResult, ...] = ()
    commands: tuple[TaskCommand, ...] = ()
    rejected: tuple[tuple[str, str, str], ...] = ()
    offsets: tuple[tuple[str, int, int], ...] = ()


class ReadModel(Protocol):
    """Tasks, audit trail and tokens for the API (SQLite embedded, Cassandra in production).

    Written only by the projector (and tokens by ``kronwheel token create``),
    never by request handlers; every write is an idempotent upsert, so
    re-reading a topic from any offset converges to the same rows.
    """

    def apply(self, projector: str, batch: Projection) -> None: ...

    def offsets(self, projector: str) -> dict[tuple[str, int], int]:
        """The next offset to read per (topic, partition), as the last apply left them."""
        ...

    def get_task(self, tenant: str, task_id: str) -> TaskRecord | None:
        """The task if it exists and belongs to ``tenant``; None otherwise (never another's)."""
        ...

    def list_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        """Newest first, at most ``query.limit``."""
        ...

    def audit(self, tenant: str, task_id: str, limit: int = 100) -> list[AuditEntry]:
        """Oldest first."""
        ...

    def put_token(self, record: TokenRecord) -> None: ...

    def find_token(self, token_hash: str) -> TokenRecord | None: ...

    def purge_expired(self, before_ms: int) -> int:
        """Apply the retention where the store has no TTL of its own (SQLite):
        delete what is older than ``before_ms``; returns how many rows went."""
        ...

    def close(self) -> None: ...
