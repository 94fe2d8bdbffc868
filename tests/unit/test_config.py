from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from streams.config import (
    CONTRACT_TOPICS,
    InvalidSetting,
    Settings,
    group_membership,
    settings_help,
)

# A value other than the default for every setting, so each one must survive
# the trip through the environment on its own.
NOT_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": "127.0.0.1:9092",
    "topic_prefix": "t1.",
    "partitions": 3,
    "replication_factor": 2,
    "data_dir": Path("/var/lib/kronwheel"),
    "api_host": "0.0.0.0",
    "api_port": 18080,
    "api_token": "token",
    "signing_secret": "secret",
    "target_allowlist": ("127.0.0.0/8", "hooks.internal"),
    "cassandra_contact_points": ("10.0.0.1", "10.0.0.2"),
    "static_membership": "off",
    "assignment": "static",
    "member_index": 1,
    "member_count": 3,
    "session_timeout_ms": 6000,
    "fetch_wait_max_ms": 10,
    "linger_ms": 0,
    "dispatch_concurrency": 64,
    "wheel_horizon_ms": 30_000,
    "misfire_grace_ms": 0,
    "dispatch_per_host_concurrency": 8,
    "dispatch_per_host_rate": 50,
    "cassandra_keyspace": "kw_test",
    "history_ttl_s": 86_400,
    "dev_dispatchers": 3,
    "metrics_host": "0.0.0.0",
    "metrics_port": 0,
    "slot": "processor-1",
    "log_format": "json",
}


def test_every_setting_round_trips_through_the_environment() -> None:
    settable = {f.name for f in fields(Settings) if "env" in f.metadata}
    assert settable == set(NOT_DEFAULTS)
    base = Settings()
    for name, value in NOT_DEFAULTS.items():
        one = replace(base, **{name: value})
        assert getattr(one, name) != getattr(base, name), name
        assert Settings.from_env(one.to_env()) == one, name
    everything = replace(base, **NOT_DEFAULTS)
    assert Settings.from_env(everything.to_env()) == everything
    assert Settings.from_env(base.to_env()) == base


@pytest.mark.parametrize(
    "name", ["misfire_grace_ms", "linger_ms", "dispatch_per_host_rate", "history_ttl_s"]
)
def test_an_explicit_zero_is_kept(name: str) -> None:
    settings = Settings.from_env({Settings.env_name(name): "0"})
    assert getattr(settings, name) == 0


def test_unset_or_empty_means_the_default() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env({"KRONWHEEL_MISFIRE_GRACE_MS": "  "}) == Settings()


@pytest.mark.parametrize(
    ("env", "raw", "says"),
    [
        ("KRONWHEEL_MISFIRE_GRACE_MS", "ten", "whole number"),
        ("KRONWHEEL_API_PORT", "80.5", "whole number"),
        ("KRONWHEEL_DISPATCH_CONCURRENCY", "0", "at least 1"),
        ("KRONWHEEL_LINGER_MS", "-1", "at least 0"),
        ("KRONWHEEL_LOG_FORMAT", "xml", "one of text, json"),
    ],
)
def test_a_bad_value_names_its_variable(env: str, raw: str, says: str) -> None:
    with pytest.raises(InvalidSetting, match=env) as caught:
        Settings.from_env({env: raw})
    assert says in str(caught.value)
    assert repr(raw) in str(caught.value)


def test_topic_names_are_computed_once_from_the_prefix() -> None:
    settings = Settings(topic_prefix="p.")
    assert set(settings.topics) == set(CONTRACT_TOPICS)
    assert settings.topic("tasks.due") == "p.tasks.due"
    assert settings.topic("tasks.due") is settings.topic("tasks.due")
    assert settings.topic("bench.raw") == "p.bench.raw"
    assert replace(settings, topic_prefix="q.").topic("tasks.due") == "q.tasks.due"
    with pytest.raises(TypeError):
        settings.topics["tasks.due"] = "elsewhere"  # type: ignore[index]


def test_help_covers_every_setting() -> None:
    rows = settings_help()
    assert len(rows) == len(NOT_DEFAULTS)
    assert all(variable and text for variable, _default, text in rows)


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Settings(api_token="tok-123", signing_secret="sec-456"))
    assert "tok-123" not in text
    assert "sec-456" not in text


def test_the_readme_names_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    missing = [variable for variable, _default, _help in settings_help() if variable not in readme]
    assert not missing, f"README's Configuration lacks {missing}"


def test_static_membership_names_the_slot_and_is_off_on_the_embedded_broker() -> None:
    settings = Settings(slot="processor-1", static_membership="auto")
    assert group_membership(settings, "kw.processors") == {
        "group.instance.id": "kw.processors-processor-1"
    }
    assert group_membership(replace(settings, slot="a b/c"), "g") == {
        "group.instance.id": "g-a_b_c"  # only the characters Kafka takes
    }
    embedded = settings.with_embedded_broker("127.0.0.1:1")
    assert embedded.static_membership == "off"
    assert group_membership(embedded, "g") == {}
    assert Settings.from_env(embedded.to_env()).static_membership == "off"  # children too
    forced = replace(settings, static_membership="on").with_embedded_broker("127.0.0.1:1")
    assert group_membership(forced, "g") != {}
    with pytest.raises(InvalidSetting, match="KRONWHEEL_STATIC_MEMBERSHIP"):
        Settings.from_env({"KRONWHEEL_STATIC_MEMBERSHIP": "sometimes"})
