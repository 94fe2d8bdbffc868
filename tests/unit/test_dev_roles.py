"""How many dispatchers `kronwheel dev` runs, and what the supervised roles are called."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.config import Settings
from streams.kafka.assignment import owned_partitions, static_member
from streams.ops.dev import (
    DEV_SESSION_TIMEOUT_MS,
    KAFKA_MIN_SESSION_TIMEOUT_MS,
    _dev_settings,
    _role_specs,
    dev_assignment,
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


def test_dev_assigns_statically_on_the_embedded_broker_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(Settings.env_name("assignment"), raising=False)
    assert _dev_settings(Settings(), "token", embedded=True).assignment == "static"
    assert _dev_settings(Settings(), "token", embedded=False).assignment == "group"
    monkeypatch.setenv(Settings.env_name("assignment"), "group")
    assert dev_assignment(embedded=True) == "group"
    monkeypatch.setenv(Settings.env_name("assignment"), "static")
    with pytest.raises(ValueError, match="only safe"):
        dev_assignment(embedded=False)


@pytest.mark.parametrize("dispatchers", [1, 2, 3, 5])
def test_dev_gives_every_partition_one_static_owner_per_role(
    dispatchers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(Settings.env_name("assignment"), raising=False)
    for name in ("member_index", "member_count"):
        monkeypatch.delenv(Settings.env_name(name), raising=False)
    settings = _dev_settings(Settings(bootstrap_servers="127.0.0.1:1"), "t", embedded=True)
    specs = _role_specs(settings, {}, None, dispatchers)
    members: dict[str, list[tuple[int, int]]] = {}
    for spec in specs:
        own = Settings.from_env(spec.env)
        if spec.name in ("processor", "dispatcher") or spec.name.startswith("dispatcher-"):
            role = spec.name.split("-")[0]
            members.setdefault(role, []).append(static_member(own))
        else:
            assert own.member_index is None
    assert members["processor"] == [(0, 1)]
    assert sorted(members["dispatcher"]) == [(i, dispatchers) for i in range(dispatchers)]
    owners = [p for i, n in members["dispatcher"] for p in owned_partitions(i, n, 12)]
    assert sorted(owners) == list(range(12))
