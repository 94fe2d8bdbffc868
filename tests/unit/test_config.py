from dataclasses import replace
from pathlib import Path

from streams.config import Settings


def test_to_env_round_trips_through_from_env() -> None:
    settings = replace(
        Settings(),
        bootstrap_servers="127.0.0.1:9092",
        topic_prefix="t1.",
        partitions=3,
        replication_factor=2,
        data_dir=Path("/var/lib/kronwheel"),
        api_port=18080,
        api_token="token",
        signing_secret="secret",
        target_allowlist=("127.0.0.0/8", "hooks.internal"),
        cassandra_contact_points=("10.0.0.1", "10.0.0.2"),
        session_timeout_ms=6000,
        fetch_wait_max_ms=10,
        linger_ms=0,
        dispatch_concurrency=64,
        dispatch_per_host_concurrency=8,
        dispatch_per_host_rate=50,
        cassandra_keyspace="kw_test",
        history_ttl_s=86_400,
        metrics_port=0,
        slot="processor-1",
        log_format="json",
        wheel_horizon_ms=30_000,
        misfire_grace_ms=5_000,
    )
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env(Settings().to_env()) == Settings()


def test_secrets_stay_out_of_repr() -> None:
    text = repr(Settings(api_token="tok-123", signing_secret="sec-456"))
    assert "tok-123" not in text
    assert "sec-456" not in text
