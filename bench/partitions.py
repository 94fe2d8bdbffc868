"""Which tasks.due partition a task's firings went through, from its id alone.

The producers partition by key with the Java client's murmur2 (streams.config
sets ``partitioner=murmur2_random``), and a task's firings are keyed by its
id, so the bench can split the sink's callbacks by partition without asking
Kafka. Used to show whether one dispatcher serves its partitions side by side
or one after another (issue 15).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from bench.common import percentile
from streams.config import Settings
from streams.kafka.topics import DUE, topic_partitions

# infra/topics.toml's count (what the topics get without KRONWHEEL_PARTITIONS);
# callers that know the count pass it.
TOPICS_DEFAULT_PARTITIONS = topic_partitions(Settings(), DUE)

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as an unsigned int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    if extra >= 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: str, partitions: int = TOPICS_DEFAULT_PARTITIONS) -> int:
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def by_partition(
    firings: Iterable[tuple[str, int, int]], partitions: int = TOPICS_DEFAULT_PARTITIONS
) -> dict[str, dict[str, float]]:
    """(task id, scheduled ms, received ms) -> per partition: count, lateness p50 and
    p99 (ms), and when its last callback arrived (s after the first scheduled time)."""
    late: dict[int, list[float]] = defaultdict(list)
    last: dict[int, int] = {}
    first_due: int | None = None
    for task_id, scheduled_ms, received_ms in firings:
        p = partition_of(task_id, partitions)
        late[p].append(float(received_ms - scheduled_ms))
        last[p] = max(last.get(p, received_ms), received_ms)
        first_due = scheduled_ms if first_due is None else min(first_due, scheduled_ms)
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(late):
        out[str(p)] = {
            "count": len(late[p]),
            "p50_ms": percentile(late[p], 50),
            "p99_ms": percentile(late[p], 99),
            "last_s": (last[p] - (first_due or 0)) / 1000,
        }
    return out
