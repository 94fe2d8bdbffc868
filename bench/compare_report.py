"""The comparison's output: tables with ratios against the baseline, JSON, a chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import percentile, table
from bench.report import per_second

BASELINE = "apscheduler"
WORKLOADS = ("steady", "burst")


def _row(workload: str, system: str, run: dict[str, Any]) -> list[object]:
    result = run[workload]
    lateness = result["lateness_ms"]
    return [
        workload,
        system,
        f"{result['delivered']:,}/{result['expected']:,}",
        result["doubled"],
        lateness["p50"],
        lateness["p90"],
        lateness["p99"],
        lateness["max"],
        result["drain_s"],
        result["cpu_s"]["total"],
        result["cpu_ms_per_task"],
        run["peak_rss_mb"]["total"],
    ]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}x" if b > 0 else "-"


def print_tables(summary: dict[str, Any]) -> None:
    runs: dict[str, Any] = summary["systems"]
    rows: list[list[object]] = []
    for workload in WORKLOADS:
        rows.extend(_row(workload, system, run) for system, run in runs.items())
        if BASELINE in runs and len(runs) > 1:
            base = runs[BASELINE][workload]
            for system, run in runs.items():
                if system == BASELINE:
                    continue
                mine = run[workload]
                rows.append(
                    [
                        workload,
                        f"{system} / {BASELINE}",
                        "",
                        "",
                        *(
                            _ratio(mine["lateness_ms"][q], base["lateness_ms"][q])
                            for q in ("p50", "p90", "p99", "max")
                        ),
                        _ratio(mine["drain_s"], base["drain_s"]),
                        _ratio(mine["cpu_s"]["total"], base["cpu_s"]["total"]),
                        _ratio(mine["cpu_ms_per_task"], base["cpu_ms_per_task"]),
                        _ratio(run["peak_rss_mb"]["total"], runs[BASELINE]["peak_rss_mb"]["total"]),
                    ]
                )
    headers = ["workload", "system", "delivered", "doubled", "p50 ms", "p90 ms", "p99 ms"]
    headers += ["max ms", "drain s", "CPU s", "CPU ms/task", "peak RSS MB"]
    load = ", ".join(f"{x:.2f}" for x in summary["load_average_before"])
    print(
        f"\nscale {summary['scale']}, lead {summary['lead_s']:.0f} s, {summary['cpus']} CPUs, "
        f"kronwheel dev dispatchers {summary.get('dev_dispatchers') or 'default'}, "
        f"load average before the run {load}"
    )
    print(table(headers, rows))
    for system, run in runs.items():
        for workload in WORKLOADS:
            roles = {k: v for k, v in run[workload]["cpu_s"].items() if k != "total"}
            parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(roles.items(), key=lambda x: -x[1]))
            bench = run[workload]["bench_process_cpu_s"]
            print(f"{system} {workload} CPU s by process: {parts} (bench process {bench:.1f})")
            split = run[workload].get("by_partition")
            if split:
                print(
                    f"{system} {workload} by tasks.due partition (p50 ms / last s): "
                    + ", ".join(
                        f"{p}: {v['p50_ms']:.0f} / {v['last_s']:.1f}" for p, v in split.items()
                    )
                )
        rss = {k: v for k, v in run["peak_rss_mb"].items() if k != "total"}
        parts = ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
        print(f"{system} peak RSS MB by process: {parts}")


# cProfile counts wall time: these built-ins are where a role waits, not works.
_WAITS = ("'poll' of", "'consume' of", "'acquire' of", "'select' of", "'flush' of", "sleep")


def print_profiles(directory: Path, top: int = 12) -> None:
    """Each role's top functions by own time, waits left out: where its CPU went.

    cProfile measures wall time: blocking calls not in ``_WAITS`` (a transaction
    commit waiting for the broker) still count, so read the top as a guide."""
    import pstats

    for path in sorted(directory.glob("*.prof")):
        stats = pstats.Stats(str(path))
        entries = stats.stats  # type: ignore[attr-defined]
        # (file, line, name) -> (primitive calls, calls, own time, cumulative, callers)
        working = [
            (own, calls, f"{_short(file)}:{line}({name})" if line else name)
            for (file, line, name), (_, calls, own, _cum, _) in entries.items()
            if not any(wait in name for wait in _WAITS)
        ]
        working.sort(reverse=True)
        busy = sum(own for own, _, _ in working)
        print(f"\n=== {path.stem}: {busy:.1f} s of own time outside waits; top {top} ===")
        for own, calls, where in working[:top]:
            print(f"{own:8.2f} s {100 * own / busy:5.1f} % {calls:>9} calls  {where[-110:]}")


def _short(file: str) -> str:
    """A source path without the machine's prefix: package-relative."""
    for marker in ("site-packages/", "/lib/python3.11/", "/streams/", "/bench/"):
        if marker in file:
            head = "" if marker.endswith("/lib/python3.11/") or "site" in marker else marker
            return head.strip("/") + ("/" if head else "") + file.split(marker, 1)[1]
    return file


def write_artifacts(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """compare.json (numbers, arrivals per second) and compare.png (lateness, throughput)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for system, run in summary["systems"].items():
        for workload in (*WORKLOADS, "warmup"):
            result = run.get(workload, {})
            lateness = result.pop("_lateness", [])
            arrivals = result.pop("_arrivals", [])
            if workload in WORKLOADS:
                samples[(system, workload)] = (lateness, arrivals)
                result["arrivals_per_s"] = per_second(arrivals)
    json_path = out_dir / "compare.json"
    json_path.write_text(json.dumps(summary, indent=2))
    png_path = out_dir / "compare.png"
    _chart(samples, png_path)
    return json_path, png_path


def _chart(samples: dict[tuple[str, str], tuple[list[float], list[int]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on these machines
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 8))
    for column, workload in enumerate(WORKLOADS):
        cdf, rate = axes[0][column], axes[1][column]
        for (system, name), (lateness, arrivals) in samples.items():
            if name != workload or not lateness:
                continue
            ordered = sorted(max(x, 0.1) for x in lateness)
            fractions = [(i + 1) / len(ordered) for i in range(len(ordered))]
            p99 = percentile(lateness, 99)
            cdf.plot(ordered, fractions, label=f"{system} (p99 {p99:,.0f} ms)")
            if arrivals:
                seconds, counts = zip(*per_second(arrivals), strict=True)
                rate.plot(seconds, counts, label=system)
        cdf.set_xscale("log")
        cdf.set_title(f"{workload}: lateness CDF (callback received - scheduled)")
        cdf.set_xlabel("ms (log)")
        cdf.legend()
        rate.set_title(f"{workload}: callbacks received per second")
        rate.set_xlabel("seconds since the first callback")
        rate.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
