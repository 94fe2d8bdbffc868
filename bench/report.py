"""What every whole-pipeline scenario leaves behind: a table, a JSON file, a PNG chart."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import percentile, table

ARTIFACTS = Path(".artifacts") / "bench"


def latency_summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "max": max(samples, default=float("nan")),
    }


def per_second(times_ms: Sequence[int]) -> list[tuple[int, int]]:
    """(second since the first event, events in that second)."""
    if not times_ms:
        return []
    start = min(times_ms) // 1000
    counts = Counter(t // 1000 - start for t in times_ms)
    return [(second, counts.get(second, 0)) for second in range(max(counts) + 1)]


def write(
    scenario: str,
    summary: dict[str, Any],
    lateness_ms: Sequence[float],
    arrivals_ms: Sequence[int],
    out_dir: Path = ARTIFACTS,
) -> tuple[Path, Path]:
    """Write <scenario>.json and <scenario>.png (lateness histogram, throughput over time)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{scenario}.json"
    throughput = per_second(arrivals_ms)
    json_path.write_text(json.dumps({**summary, "throughput_per_s": throughput}, indent=2))
    png_path = out_dir / f"{scenario}.png"
    _chart(scenario, lateness_ms, throughput, png_path)
    return json_path, png_path


def _chart(
    scenario: str,
    lateness_ms: Sequence[float],
    throughput: list[tuple[int, int]],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on these machines
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if lateness_ms:
        ceiling = max(percentile(lateness_ms, 99.9), 1.0)
        left.hist([min(x, ceiling) for x in lateness_ms], bins=60, color="#3b6ea5")
        for q, style in ((50, "--"), (99, ":")):
            value = percentile(lateness_ms, q)
            left.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.0f} ms")
        left.legend()
    left.set_title(f"{scenario}: lateness (callback received - scheduled)")
    left.set_xlabel("ms (values above p99.9 drawn at p99.9)")
    left.set_ylabel("callbacks")
    if throughput:
        seconds, counts = zip(*throughput, strict=True)
        right.plot(seconds, counts, color="#a5473b")
    right.set_title("callbacks received per second")
    right.set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def print_table(summary: dict[str, Any], raw: dict[str, float]) -> None:
    lateness = summary["lateness_ms"]
    rows = [
        ["raw broker produce->consume", raw["n"], raw["p50"], raw["p95"], raw["p99"], raw["max"]],
        [
            "scheduled->callback",
            lateness["n"],
            lateness["p50"],
            lateness["p95"],
            lateness["p99"],
            lateness["max"],
        ],
    ]
    print(table(["path (ms)", "n", "p50", "p95", "p99", "max"], rows))
    print(f"p99 ratio to the raw broker: {lateness['p99'] / max(raw['p99'], 1):.1f}x")
