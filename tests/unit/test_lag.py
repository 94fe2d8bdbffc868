from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import REGISTRY

from streams.lag import forget_partitions, record_consumer_lag


@dataclass(frozen=True)
class FakePartition:
    topic: str
    partition: int
    offset: int = -1001


class FakeConsumer:
    """Positions and last-fetch watermarks, as a confluent_kafka.Consumer keeps them."""

    def __init__(self, positions: dict[int, int], highs: dict[int, int]) -> None:
        self.positions = positions
        self.highs = highs

    def assignment(self) -> Sequence[Any]:
        return [FakePartition("tasks.due", p) for p in self.positions]

    def position(self, partitions: Sequence[Any]) -> Sequence[Any]:
        return [replace(tp, offset=self.positions[tp.partition]) for tp in partitions]

    def get_watermark_offsets(
        self, partition: Any, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        assert cached, "lag must not cost a broker request"
        return 0, self.highs[partition.partition]


def gauge(group: str, partition: int) -> float | None:
    value = REGISTRY.get_sample_value(
        "kronwheel_consumer_lag_messages",
        {"group": group, "topic": "tasks.due", "partition": str(partition)},
    )
    return value


def test_lag_is_the_fetched_end_minus_the_position() -> None:
    consumer = FakeConsumer(positions={0: 40, 1: -1001, 2: 7}, highs={0: 100, 1: 5, 2: 7})
    lags = record_consumer_lag(consumer, "g-lag")
    assert lags == {("tasks.due", 0): 60, ("tasks.due", 2): 0}
    assert gauge("g-lag", 0) == 60
    assert gauge("g-lag", 1) is None  # no position yet: no guess
    forget_partitions("g-lag", [FakePartition("tasks.due", 0), FakePartition("tasks.due", 1)])
    assert gauge("g-lag", 0) is None
    assert gauge("g-lag", 2) == 0
