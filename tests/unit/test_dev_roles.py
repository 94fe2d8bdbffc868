"""How many dispatchers `kronwheel dev` runs, and what the supervised roles are called."""

from __future__ import annotations

from streams.config import Settings
from streams.ops.dev import dev_dispatchers, role_names


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
