"""The arithmetic of ``bench.records_per_task``: what a topic's log holds, per task.

Pure functions over records as a read_uncommitted consumer returned them, so a
unit test can feed plain values:

* :func:`tally_topic`: records, bytes, tombstones, and the offsets a consumer
  never sees. Between a partition's low and high watermark every offset is a
  record or a control record (a transaction's commit or abort marker, which
  takes an offset but is never delivered), as long as compaction has not run:
  so markers = (high - low) - records.
* :func:`offset_commits`: the records of ``__consumer_offsets`` per consumer
  group, and how many commits wrote them. One commit (``OffsetCommit`` or a
  transaction's ``TxnOffsetCommit``) is one batch of consecutive offsets on the
  group's partition; a transaction's marker, or another group's record, ends it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The least any design of this pipeline writes per one-time task: the command
# that creates it, the event that fires it, the outcome of its one attempt.
MINIMUM_PER_TASK = {"tasks.commands": 1, "tasks.due": 1, "tasks.results": 1}


@dataclass(frozen=True, slots=True)
class SeenRecord:
    """One data record: where it sits, its size (key + value + headers) and
    whether it is a tombstone (no value)."""

    partition: int
    offset: int
    size: int
    tombstone: bool = False


@dataclass(frozen=True, slots=True)
class TopicTally:
    topic: str
    records: int
    bytes: int
    tombstones: int
    log_offsets: int  # sum over partitions of high - low watermark
    aborted: int | None = None  # read_uncommitted minus read_committed, when both were read

    @property
    def markers(self) -> int:
        """Offsets no consumer sees: transaction markers (before any compaction)."""
        return self.log_offsets - self.records


def tally_topic(
    topic: str,
    records: Iterable[SeenRecord],
    watermarks: Mapping[int, tuple[int, int]],
    committed_records: int | None = None,
) -> TopicTally:
    """Sum one topic. ``watermarks``: partition -> (low, high) after the read;
    ``committed_records``: what a read_committed reader got (None: not read)."""
    count = size = tombstones = 0
    for record in records:
        count += 1
        size += record.size
        tombstones += record.tombstone
        low, high = watermarks[record.partition]
        if not low <= record.offset < high:
            raise ValueError(f"{topic}[{record.partition}]@{record.offset} is outside {low}-{high}")
    span = sum(high - low for low, high in watermarks.values())
    if span < count:
        raise ValueError(f"{topic}: {count} records in {span} offsets")
    aborted = None if committed_records is None else count - committed_records
    return TopicTally(topic, count, size, tombstones, span, aborted)


def per_task(value: float, tasks: int) -> float:
    return value / tasks if tasks else float("nan")


# --- __consumer_offsets ---------------------------------------------------------------


def offsets_key_group(key: bytes | None) -> str | None:
    """The group of an offset commit record's key (versions 0 and 1: group, topic,
    partition); None for any other record (version 2 is a group's metadata)."""
    if key is None or len(key) < 4:
        return None
    version = int.from_bytes(key[:2], "big", signed=True)
    if version not in (0, 1):
        return None
    length = int.from_bytes(key[2:4], "big", signed=True)
    if length < 0 or len(key) < 4 + length:
        return None
    return key[4 : 4 + length].decode("utf-8", "replace")


def java_string_hash(text: str) -> int:
    """Java's String.hashCode (UTF-16 code units), which places a group's offsets."""
    data = text.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_partition(group: str, partitions: int = 50) -> int:
    """The ``__consumer_offsets`` partition holding ``group``'s commits (Kafka's
    Utils.abs(hashCode) % partitions; abs of MIN_VALUE is 0 there)."""
    h = java_string_hash(group)
    return (0 if h == -(2**31) else abs(h)) % partitions


@dataclass
class GroupCommits:
    records: int = 0  # one per partition per commit
    commits: int = 0  # batches: one per OffsetCommit / TxnOffsetCommit


def offset_commits(
    records: Iterable[tuple[int, int, str | None]], groups: Iterable[str]
) -> dict[str, GroupCommits]:
    """(partition, offset, group or None) of ``__consumer_offsets`` records, in
    offset order per partition -> per group of ``groups``: records and commits.
    A record right after the same group's previous record (no offset between)
    continues that commit's batch; anything in between starts a new one."""
    out = {group: GroupCommits() for group in groups}
    previous: dict[int, tuple[int, str | None]] = {}
    for partition, offset, group in records:
        before = previous.get(partition)
        previous[partition] = (offset, group)
        if group not in out:
            continue
        counts = out[group]
        counts.records += 1
        if before is None or before != (offset - 1, group):
            counts.commits += 1
    return out
