"""The consumer-lag gauge, from what a role's own consumer already knows.

A role calls :func:`record_consumer_lag` now and then from its poll loop (it
costs no request: positions are local and the high watermarks are those of the
last fetch, which are right even on the dev broker) and
:func:`forget_partitions` when partitions are revoked, so a partition that
moved away does not keep reporting its last lag from this process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from streams.metrics import CONSUMER_LAG


class LagSource(Protocol):
    """What is needed of a consumer (confluent_kafka.Consumer fits)."""

    def assignment(self) -> Sequence[Any]: ...

    def position(self, partitions: Sequence[Any]) -> Sequence[Any]: ...

    def get_watermark_offsets(
        self, partition: Any, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]: ...


def record_consumer_lag(consumer: LagSource, group: str) -> dict[tuple[str, int], int]:
    """Set the gauge for every assigned partition; returns the lags it set.

    A partition with no position yet (nothing consumed since assignment) or no
    fetched watermark is left out rather than reported as a guess.
    """
    lags: dict[tuple[str, int], int] = {}
    for tp in consumer.position(list(consumer.assignment())):
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        if tp.offset < 0 or high < 0:
            continue
        lag = max(0, high - tp.offset)
        CONSUMER_LAG.labels(group=group, topic=tp.topic, partition=str(tp.partition)).set(lag)
        lags[(tp.topic, tp.partition)] = lag
    return lags


def forget_partitions(group: str, partitions: Iterable[Any]) -> None:
    for tp in partitions:
        with contextlib.suppress(KeyError):  # never reported from here: nothing to drop
            CONSUMER_LAG.remove(group, tp.topic, str(tp.partition))
