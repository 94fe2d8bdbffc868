"""How many dispatchers `kronwheel dev` runs, and what the supervised roles are called."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.config import Settings
from streams.ops.dev import (
    DEV_SESSION_TIMEOUT_MS,
    KAFKA_MIN_SESSION_TIMEOUT_MS,
    _dev_settings,
    dev_dispatchers,
    role_names,
)


def test_one_dispatcher_per_core_at_least_two_at_most_one_per_partition() -> None:
    unset = Settings()
    assert dev_dispatchers(unset, cores=1, partitions=6) == 2
    assert dev_dispatchers(unset, cores=None, partitions=6) == 2
    assert dev_dispatchers(unset, cores=4, partitions=6) == 4
    assert dev_dispatchers(unset, cores=32, partitions=6) == 6, "a member without a partition idles"
    assert dev_dispatchers(unset, cores=8, partitions=1) == 1


def test_the_setting_overrides_the_machine() -> None:
    settings = Settings.from_env({"KRONWHEEL_DEV_DISPATCHERS": "1"})
    assert dev_dispatchers(settings, cores=8, partitions=6) == 1


def test_extra_dispatchers_are_named_after_the_first() -> None:
    assert role_names(3, keeper=True) == [
        "keeper",
        "processor",
        "dispatcher",
        "dispatcher-2",
        "dispatcher-3",
        "api",
    ]
    assert role_names(1, keeper=False) == ["processor", "dispatcher", "api"]


def test_dev_uses_a_short_session_on_the_embedded_broker_and_kafkas_minimum_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(Settings.env_name("session_timeout_ms"), raising=False)
    embedded = _dev_settings(Settings(), "token", embedded=True)
    assert embedded.session_timeout_ms == DEV_SESSION_TIMEOUT_MS < KAFKA_MIN_SESSION_TIMEOUT_MS
    # Apache Kafka refuses a join under its group.min.session.timeout.ms (6 s).
    assert _dev_settings(Settings(), "token", embedded=False).session_timeout_ms == 6000
    monkeypatch.setenv(Settings.env_name("session_timeout_ms"), "9000")
    chosen = replace(Settings(), session_timeout_ms=9000)
    assert _dev_settings(chosen, "token", embedded=True).session_timeout_ms == 9000
