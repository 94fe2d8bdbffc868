"""The crash benchmark's output: one table with ratios against the baselines,
the outage breakdown per system, and the JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bench.common import table

BASELINES = ("arq", "apscheduler")
GOAL_P99_MS = 2_000.0  # issue 13: p99 at most 2 s after one crash
QUANTILES = ("p50", "p90", "p99", "max")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def rows(runs: dict[str, Any]) -> list[list[object]]:
    out: list[list[object]] = []
    for system, run in runs.items():
        if "skipped" in run:
            out.append([system, run["broker"], f"not run: {run['skipped']}"] + [""] * 6)
            continue
        lateness = run["lateness_ms"]
        counts = f"{run['delivered']:,}/{run['missing']:,}/{run['doubled']:,}"
        goal = "yes" if lateness["p99"] <= GOAL_P99_MS else "no"
        quantiles = [lateness[q] for q in QUANTILES]
        out.append([system, run["broker"], counts, *quantiles, run["cpu_s"]["total"], goal])
    for system, run in runs.items():
        if system in BASELINES or "skipped" in run:
            continue
        for base in BASELINES:
            other = runs.get(base, {})
            if "lateness_ms" not in other:
                continue
            ratios = [_ratio(run["lateness_ms"][q], other["lateness_ms"][q]) for q in QUANTILES]
            cpu = _ratio(run["cpu_s"]["total"], other["cpu_s"]["total"])
            out.append([f"{system} / {base}", "", "", *ratios, cpu, ""])
    return out


def outage_lines(runs: dict[str, Any]) -> list[str]:
    """Where each system's outage went, seconds after the kill."""
    lines = []
    for system, run in runs.items():
        if "outage" not in run:
            continue
        for process, steps in run["outage"].items():
            parts = ", ".join(f"{k.removesuffix('_s')} {v}" for k, v in steps.items())
            lines.append(f"{system} {process}: {parts}")
        lines.append(
            f"{system}: first callback after the restart {run['delivered_again_s']} s after "
            f"the kill; longest silence across the kill {run['longest_silence_s']} s"
        )
        before = run["lateness_before_crash_ms"]
        lines.append(
            f"{system}: firings due before the kill (no crash yet): "
            f"p50 {before['p50']:,.0f} ms, p99 {before['p99']:,.0f} ms, max {before['max']:,.0f} ms"
        )
        if run.get("doubled_received_s"):
            shown = "; ".join(
                f"{key} at {', '.join(map(str, seen))}"
                for key, seen in list(run["doubled_received_s"].items())[:5]
            )
            lines.append(f"{system}: delivered twice (received, s after the kill): {shown}")
    return lines


def print_table(summary: dict[str, Any]) -> None:
    load = ", ".join(f"{x:.2f}" for x in summary["load_average_before"])
    after = ", ".join(f"{x:.2f}" for x in summary["load_average_after"])
    print(
        f"\n{summary['tasks']:,} tasks at {summary['per_s']:.0f}/s, one crash half-way; "
        f"{summary['cpus']} CPUs, load average before {load}, after {after}"
    )
    headers = ["system", "broker / store", "delivered/lost/doubled"]
    headers += [f"{q} ms" for q in QUANTILES] + ["CPU s", "p99 <= 2 s"]
    print(table(headers, rows(summary["systems"])))
    print("\noutage (seconds after the SIGKILL):")
    for line in outage_lines(summary["systems"]):
        print(f"  {line}")


def write_json(summary: dict[str, Any], out_dir: Path) -> Path:
    """crash-embedded.json, or crash-kafka.json when kronwheel ran on a real Kafka."""
    out_dir.mkdir(parents=True, exist_ok=True)
    broker = "kafka" if os.environ.get("KAFKA_BOOTSTRAP_SERVERS") else "embedded"
    path = out_dir / f"crash-{broker}.json"
    path.write_text(json.dumps(summary, indent=2))
    return path
