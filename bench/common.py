"""Shared bits of the benchmarks: percentiles and a plain-text table."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from streams.config import Settings
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.ops.dev import dev_session_timeout_ms


def bench_settings(stack: ExitStack, **overrides: Any) -> tuple[Settings, Path]:
    """Settings for one bench run, and its work directory (both gone with ``stack``).

    The broker is KAFKA_BOOTSTRAP_SERVERS when set, else an embedded one; topics
    get a fresh prefix, roles dev's session (unless KRONWHEEL_SESSION_TIMEOUT_MS
    says) and loopback targets."""
    base = Settings.from_env()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    session_ms = base.session_timeout_ms
    if Settings.env_name("session_timeout_ms") not in os.environ:
        session_ms = dev_session_timeout_ms(embedded=not bootstrap)
    if not bootstrap:
        bootstrap = stack.enter_context(EmbeddedBroker()).bootstrap_servers
        base = base.with_embedded_broker(bootstrap)
    work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    settings = replace(
        base,
        bootstrap_servers=bootstrap,
        topic_prefix=f"bench{uuid.uuid4().hex[:8]}.",
        data_dir=work / "data",
        api_port=free_loopback_port(),
        partitions=6,
        target_allowlist=("127.0.0.0/8",),
        session_timeout_ms=session_ms,
    )
    return replace(settings, **overrides), work


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
