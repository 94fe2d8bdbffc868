"""The table ``python -m bench.records_per_task`` prints, from its summary."""

from __future__ import annotations

from typing import Any

from bench.common import table
from bench.record_tally import MINIMUM_PER_TASK, per_task


def report(summary: dict[str, Any]) -> str:
    n = summary["tasks"]
    rows = []
    total_records = total_bytes = total_markers = 0
    for t in summary["topics"]:
        minimum = MINIMUM_PER_TASK.get(t["topic"], 0)
        rows.append(
            [
                t["topic"],
                t["records"],
                per_task(t["records"], n),
                minimum,
                per_task(t["bytes"], n),
                per_task(t["tombstones"], n),
                t["markers"],
                per_task(t["markers"], n),
                "n/a" if t["aborted"] is None else t["aborted"],
            ]
        )
        total_records += t["records"]
        total_bytes += t["bytes"]
        total_markers += t["markers"]
    least = sum(MINIMUM_PER_TASK.values())
    rows.append(
        [
            "all",
            total_records,
            per_task(total_records, n),
            least,
            per_task(total_bytes, n),
            "",
            total_markers,
            per_task(total_markers, n),
            "",
        ]
    )
    headers = ["topic", "records", "/task", "min", "B/task", "tomb/task"]
    load_before, load_after = summary["load_average_before"][0], summary["load_average_after"][0]
    lines = [
        f"{summary['broker']}: {n:,} tasks, {summary['delivered']:,} delivered, "
        f"{summary['doubled']:,} doubled, lateness p50 {summary['lateness_ms']['p50']:,.0f} ms "
        f"p99 {summary['lateness_ms']['p99']:,.0f} ms; "
        f"load average {load_before:.2f} before, {load_after:.2f} after",
        table([*headers, "markers", "markers/task", "aborted"], rows),
        f"records per task against the minimum ({least}: a command, a due event, a result): "
        f"{per_task(total_records, n) / least:.2f}x",
    ]
    txns = summary["processor_transactions"]
    lines.append(
        f"processor transactions (its metrics): {txns['committed']:.0f} committed "
        f"({per_task(txns['committed'], n):.3f}/task), {txns['aborted']:.0f} aborted"
    )
    commits = summary["offset_commits"]
    if commits is None:
        lines.append("offset commits: n/a (no readable __consumer_offsets on this broker)")
    for group, c in (commits or {}).items():
        lines.append(
            f"offset commits of {group} (__consumer_offsets): {c['commits']:,} commits "
            f"({per_task(c['commits'], n):.3f}/task), {c['records']:,} offset records "
            f"({per_task(c['records'], n):.3f}/task)"
        )
    cpu, idle = summary["cpu_s"], summary["idle_cpu_s"]
    lines.append(
        f"CPU s over the workload ({summary['workload_s']:.1f} s from the first create; noisy): "
        + ", ".join(f"{role} {s:.2f}" for role, s in sorted(cpu.items(), key=lambda kv: -kv[1]))
    )
    lines.append(
        f"CPU s per second idle (over {summary['idle_s']:.0f} s before the workload): "
        + ", ".join(
            f"{role} {s / summary['idle_s']:.3f}"
            for role, s in sorted(idle.items(), key=lambda kv: -kv[1])
        )
    )
    for label, counts, scale in (
        ("requests per task over the workload", summary["requests"], n),
        ("requests per second idle", summary["idle_requests"], summary["idle_s"]),
    ):
        if counts is None:
            continue
        lines.append(f"{label} (counting proxy), by role:")
        for role, by_api in counts.items():
            top = sorted(by_api.items(), key=lambda kv: -kv[1])
            total = sum(by_api.values())
            lines.append(
                f"  {role}: {total / scale:.3f} ("
                + ", ".join(f"{api} {c / scale:.3f}" for api, c in top if c / scale >= 0.001)
                + ")"
            )
    return "\n".join(lines)
