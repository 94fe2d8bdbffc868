"""The keeper: copies what matters from ``kronwheel dev``'s in-memory broker to disk.

A role of ``kronwheel dev`` only (with the embedded broker). It reads every
partition of the five topics with ``assign()`` (read_committed, no group),
and stores each batch in the kept log (:mod:`streams.ops.durable`) together
with its read positions, in one SQLite transaction.

Pruning is what needs care. A record may be dropped once every consumer of
its topic has committed past it, but the processors commit a command's offset
in the same transaction as the state and due records it produced: dropping
the command before those records are on disk would lose the task if
everything died at that moment. So a prune cycle (:class:`PruneCycle`) reads
the consumers' offsets first, then the ends of every partition, waits until
the copy has reached those ends, and only then prunes with the offsets it read
at the start. The dev broker reports a partition's end as the start of its
last batch + 1; the copy is then also made to reach the high watermark its
fetches report (right on every broker) before the cycle completes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FrameType

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from streams.config import Settings, consumer_config, kafka_config
from streams.dispatch import group_id as dispatcher_group
from streams.kafka.clients import consume_batch
from streams.kafka.topics import COMMANDS, DEAD, DUE, RESULTS, STATE
from streams.ops.durable import KeptLog, KeptRecord, Partition, low_watermarks, open_kept_log
from streams.ops.server import start_ops_server
from streams.timewheel import group_id as processor_group
from streams.views.sqlitefile import open_shared_file

log = logging.getLogger(__name__)

KEPT_TOPICS = (COMMANDS, STATE, DUE, RESULTS, DEAD)
PRUNE_EVERY_S = 1.0
# On SIGTERM, at most this long for a last full cycle (dev waits 10 s, then SIGKILLs).
STOP_DRAIN_S = 7.0
MAX_BATCH = 5_000
POLL_S = 0.2
# The projector of ``kronwheel dev``'s API (its slot is dev-api).
DEV_PROJECTOR = "api-dev-api"


def readers(settings: Settings, projector: str = DEV_PROJECTOR) -> dict[str, tuple[str, ...]]:
    """Which consumers read each kept topic (by physical topic name)."""
    t = settings.topic
    return {
        t(COMMANDS): (processor_group(settings), projector),
        t(STATE): (projector,),  # processors read it whole on assignment: live states stay
        t(DUE): (dispatcher_group(settings),),
        t(RESULTS): (projector,),
        t(DEAD): (projector,),
    }


def projector_offsets(settings: Settings, projector: str) -> dict[tuple[str, str, int], int]:
    """The API projector's offsets, kept in the read model (history.sqlite3)."""
    conn = open_shared_file(settings.history_db_path)
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rm_offsets'"
        ).fetchone()
        if not exists:
            return {}
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM rm_offsets WHERE projector = ?",
            (projector,),
        ).fetchall()
    finally:
        conn.close()
    return {(projector, t, p): o for t, p, o in rows}


def offset_probe(settings: Settings, group: str) -> Consumer:
    """A client that only asks for ``group``'s committed offsets (it never joins)."""
    return Consumer(kafka_config(settings, "keeper", **{"group.id": group}))


def group_offsets(
    probes: Mapping[str, Consumer], partitions: list[Partition]
) -> dict[tuple[str, str, int], int]:
    found: dict[tuple[str, str, int], int] = {}
    for group, probe in probes.items():
        tps = [TopicPartition(t, p) for t, p in partitions]
        for tp in probe.committed(tps, timeout=10):
            if tp.offset >= 0:
                found[(group, tp.topic, tp.partition)] = tp.offset
    return found


def _byte_headers(headers: object) -> list[tuple[str, bytes | None]] | None:
    if not isinstance(headers, list):
        return None
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in headers]


class CatchUp:
    """Wait for the copy to reach ends queried at some moment.

    The dev broker reports an end as the start of the partition's last batch + 1;
    once the copy reaches that, the batch is being read and its true end is at
    most the high watermark reported by the fetch that brought it, so that
    becomes the target. On Kafka the queried end is already right."""

    def __init__(self, ends: dict[Partition, int]) -> None:
        self.ends = ends
        self.targets: dict[Partition, int] = {}

    def reached(
        self, positions: Mapping[Partition, int], cached_high: Mapping[Partition, int]
    ) -> bool:
        for tp, end in self.ends.items():
            position = positions.get(tp, 0)
            if tp not in self.targets:
                if position < end:
                    return False
                self.targets[tp] = max(end, cached_high.get(tp, end))
            if position < self.targets[tp]:
                return False
        return True


@dataclass
class PruneCycle:
    """One prune, in two phases; each waits for the copy to reach ends queried after
    what it must cover.

    1. The consumers' offsets (``committed``), then every partition's end: once
       the copy reaches them, everything those consumers had consumed has its
       consequences on disk (their transactions committed before the ends).
    2. The state copied so far (``state_cut``), then the due partitions' ends:
       once the copy reaches them, every firing of a transaction whose state is
       below the cut is on disk too. Only state below the cut is restored, so
       a restored task never has moved past a firing that was not kept.
    """

    committed: dict[tuple[str, str, int], int]
    first: CatchUp
    due_topic: str
    state_topic: str
    state_cut: dict[Partition, int] | None = None
    second: CatchUp | None = None

    def step(
        self,
        positions: Mapping[Partition, int],
        cached_high: Mapping[Partition, int],
        due_ends: Callable[[], dict[Partition, int]],
    ) -> bool:
        """Advance; True once both phases are done."""
        if self.second is None:
            if not self.first.reached(positions, cached_high):
                return False
            self.state_cut = {tp: o for tp, o in positions.items() if tp[0] == self.state_topic}
            self.second = CatchUp(due_ends())
        return self.second.reached(positions, cached_high)


class Keeper:
    def __init__(self, settings: Settings, kept: KeptLog) -> None:
        self.settings = settings
        self.kept = kept
        self.readers = readers(settings)
        self._stop = threading.Event()
        self._caught_up = False
        self._consumer = Consumer(
            consumer_config(
                settings,
                "keeper",
                f"{settings.topic_prefix}kronwheel-keeper",  # assign() only, never commits
                **{"enable.partition.eof": False},
            )
        )
        groups = {n for names in self.readers.values() for n in names if n != DEV_PROJECTOR}
        self._probes = {group: offset_probe(settings, group) for group in sorted(groups)}
        self.partitions: list[Partition] = []
        self.positions: dict[Partition, int] = {}

    def stop(self) -> None:
        self._stop.set()

    def _assign(self) -> None:
        metadata = self._consumer.list_topics(timeout=30).topics
        stored = self.kept.positions()
        self.partitions = [
            (topic, p) for topic in self.readers for p in sorted(metadata[topic].partitions)
        ]
        self.positions = {tp: stored.get(tp, 0) for tp in self.partitions}
        self._consumer.assign(
            [
                TopicPartition(t, p, self.positions[(t, p)] or OFFSET_BEGINNING)
                for t, p in self.partitions
            ]
        )

    def run(self) -> None:
        self._assign()
        ops = start_ops_server(
            self.settings.metrics_host, self.settings.metrics_port, self._readiness, "keeper"
        )
        log.info("keeper copying %d partitions to %s", len(self.partitions), self.kept.path)
        cycle: PruneCycle | None = None
        cycle_at = 0.0
        stopping_until: float | None = None
        try:
            while stopping_until is None or time.monotonic() < stopping_until:
                if stopping_until is None and self._stop.is_set():
                    # A clean stop (the roles are already stopped): one last full
                    # cycle started now, so the next start restores everything.
                    stopping_until = time.monotonic() + STOP_DRAIN_S
                    cycle = self._start_cycle()
                messages = consume_batch(self._consumer, MAX_BATCH, POLL_S)
                self._keep(messages)
                if not messages:
                    self._caught_up = True
                if cycle is None and time.monotonic() - cycle_at >= PRUNE_EVERY_S:
                    cycle, cycle_at = self._start_cycle(), time.monotonic()
                if cycle is not None and cycle.step(
                    self._positions(), self._cached_highs(), self._due_ends
                ):
                    self._prune(cycle)
                    cycle = None
                    if stopping_until is not None:
                        log.info("keeper: final copy done")
                        break
        finally:
            if ops is not None:
                ops.stop()
            self._consumer.close()
            for probe in self._probes.values():
                probe.close()
            self.kept.close()

    def _prune(self, cycle: PruneCycle) -> None:
        assert cycle.state_cut is not None
        lows = low_watermarks(self.readers, cycle.committed, self.partitions)
        dropped = self.kept.prune(lows, cycle.committed, cycle.state_cut)
        if dropped:
            log.debug("keeper pruned %d records", dropped)

    def _keep(self, messages: list[Message]) -> None:
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("keeper consume error: %s", error)
                continue
            tp = (message.topic() or "", message.partition() or 0)
            offset = message.offset() or 0
            headers = message.headers()
            records.append(
                KeptRecord(
                    tp[0],
                    tp[1],
                    offset,
                    message.key(),
                    message.value(),
                    _byte_headers(headers),
                    message.timestamp()[1],
                )
            )
            self.positions[tp] = max(self.positions.get(tp, 0), offset + 1)
        if records:
            self.kept.store(records, self.positions)

    def _positions(self) -> dict[Partition, int]:
        """Stored positions, moved past transaction markers the client stepped over."""
        current = dict(self.positions)
        for tp in self._consumer.position([TopicPartition(t, p) for t, p in self.partitions]):
            key = (tp.topic, tp.partition)
            current[key] = max(current.get(key, 0), tp.offset)
        return current

    def _cached_highs(self) -> dict[Partition, int]:
        highs = {}
        for t, p in self.partitions:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)
            if high is not None and high >= 0:
                highs[(t, p)] = int(high)
        return highs

    def _start_cycle(self) -> PruneCycle:
        committed = group_offsets(self._probes, self.partitions)
        committed.update(projector_offsets(self.settings, DEV_PROJECTOR))
        return PruneCycle(
            committed,
            CatchUp(self._ends(self.partitions)),
            due_topic=self.settings.topic(DUE),
            state_topic=self.settings.topic(STATE),
        )

    def _ends(self, partitions: list[Partition]) -> dict[Partition, int]:
        ends: dict[Partition, int] = {}
        for t, p in partitions:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)
            ends[(t, p)] = int(high)
        return ends

    def _due_ends(self) -> dict[Partition, int]:
        due = self.settings.topic(DUE)
        return self._ends([tp for tp in self.partitions if tp[0] == due])

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        return self._caught_up and not self._stop.is_set(), {"kept": str(self.kept.path)}


def run_keeper(settings: Settings) -> None:
    keeper = Keeper(settings, open_kept_log(settings.data_dir, settings.topic(STATE)))

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        keeper.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    keeper.run()
