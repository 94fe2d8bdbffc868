"""Issue 12: a role's readiness needs a broker connection, read from librdkafka's stats."""

from __future__ import annotations

import json

from streams.kafka.brokerwatch import STALE_AFTER_INTERVALS, BrokerWatch


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stats(*brokers: tuple[int, str]) -> str:
    return json.dumps({"brokers": {f"b{n}": {"nodeid": n, "state": state} for n, state in brokers}})


def test_no_report_yet_is_not_connected() -> None:
    assert not BrokerWatch().connected()


def test_only_a_real_broker_that_is_up_counts() -> None:
    ticks = Ticks()
    watch = BrokerWatch(ticks)
    watch.on_stats(stats((-1, "UP")))  # the bootstrap placeholder is not a broker
    assert not watch.connected()
    watch.on_stats(stats((-1, "INIT"), (1, "UP")))
    assert watch.connected()
    watch.on_stats(stats((1, "DOWN"), (2, "CONNECT")))
    assert not watch.connected()


def test_a_stale_report_does_not_count() -> None:
    ticks = Ticks()
    watch = BrokerWatch(ticks)
    watch.on_stats(stats((1, "UP")))
    ticks.now += STALE_AFTER_INTERVALS + 1
    assert not watch.connected()


def test_garbage_statistics_are_not_a_connection() -> None:
    watch = BrokerWatch()
    watch.on_stats("not json")
    assert not watch.connected()
    assert BrokerWatch().config()["statistics.interval.ms"] > 0
