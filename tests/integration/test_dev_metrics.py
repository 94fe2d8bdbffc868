"""Metrics scraped from a running ``kronwheel dev`` contain every series the
operations issue names, and a firing shows up in them.

Each role's /metrics URL is read from the banner (the processor and every
dispatcher on ops ports of their own, the API on its port), so this checks what
an operator following the banner would see. The firing is counted by whichever
dispatcher owns its partition, so every dispatcher is scraped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.config import Settings
from streams.core.timefmt import format_rfc3339_ms
from streams.kafka.broker import free_loopback_port
from streams.ops.procs import spawn, stop
from tests.support.harness import ApiClient, CallbackSink
from tests.support.waiting import wait_until

TOKEN = "dev-metrics-token"
# Family names as a scrape reports them (counters without _total), with what the
# issue calls them.
REQUIRED = {
    "kronwheel_firing_lateness_seconds": "firing lateness histogram",
    "kronwheel_firings": "firings/s",
    "kronwheel_dispatch_outcomes": "dispatch outcomes by status",
    "kronwheel_retries": "retries",
    "kronwheel_dead_letters": "DLQ count",
    "kronwheel_consumer_lag_messages": "consumer lag",
    "kronwheel_wheel_timers": "wheel size",
    "kronwheel_index_tasks": "on-disk index size",
    "kronwheel_restore_duration_seconds": "restore durations",
}
# dev may run several dispatchers: "dispatcher", "dispatcher-2", ...
BANNER_METRICS = re.compile(
    r"^\s+(processor|dispatcher(?:-\d+)?|api)\s+(http://\S+/metrics)$", re.MULTILINE
)


@pytest.fixture
def dev_log(settings: Settings, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """``kronwheel dev`` on the session's broker, with the test's own topics."""
    port = free_loopback_port()
    log_path = tmp_path / "dev.log"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers or "",
        "KRONWHEEL_TOPIC_PREFIX": settings.topic_prefix,
        "KRONWHEEL_PARTITIONS": "3",
        "KRONWHEEL_API_PORT": str(port),
        "KRONWHEEL_API_TOKEN": TOKEN,
        "KRONWHEEL_DATA_DIR": str(tmp_path / "data"),
        "PYTHONUNBUFFERED": "1",
    }
    with log_path.open("wb") as log_file:
        process = spawn(
            [sys.executable, "-m", "streams.cli", "dev"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log_path, port
    finally:
        stop(process)


def scrape(url: str) -> str | None:
    # No token, as Prometheus scrapes (infra/prometheus/prometheus.yml sends none).
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def test_dev_metrics_contain_every_series(dev_log: tuple[Path, int]) -> None:
    log_path, port = dev_log
    wait_until(
        lambda: "kronwheel dev is running" in log_path.read_text("utf-8", "replace"),
        60,
        "kronwheel dev to start",
    )
    urls = dict(BANNER_METRICS.findall(log_path.read_text("utf-8", "replace")))
    assert {"processor", "dispatcher", "api"} <= set(urls), urls
    assert urls["api"] == f"http://127.0.0.1:{port}/metrics"

    api = ApiClient(f"http://127.0.0.1:{port}", TOKEN)
    with CallbackSink() as sink:
        at = format_rfc3339_ms(time.time_ns() // 1_000_000 + 500)
        status, task = api.post(
            "/v1/tasks", {"schedule": {"at": at}, "target": {"http": {"url": sink.url}}}
        )
        assert status == 202, task
        assert len(sink.wait_for(1, timeout_s=30)) == 1

    families: dict[str, int] = {}

    def scraped_all() -> bool:
        texts = [scrape(url) for url in urls.values()]
        if any(text is None for text in texts):
            return False
        families.clear()
        for text in texts:
            for family in text_string_to_metric_families(text or ""):
                families[family.name] = families.get(family.name, 0) + len(family.samples)
        # The outcome is counted right after the callback: wait for that scrape.
        return families.get("kronwheel_dispatch_outcomes", 0) > 0

    wait_until(scraped_all, 15, "every role to serve /metrics with the firing counted")
    missing = {name: what for name, what in REQUIRED.items() if name not in families}
    assert not missing, f"series missing from the scrape: {missing}"
    assert families["kronwheel_firings"] > 0
    assert families["kronwheel_firing_lateness_seconds"] > 0
