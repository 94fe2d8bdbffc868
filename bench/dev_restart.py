"""How long ``kronwheel dev`` takes to come back with N pending tasks after a SIGKILL.

    python -m bench.dev_restart --tasks 10000

Starts ``kronwheel dev`` on a fresh data directory, creates N one-time tasks
due in a day (through the API, 1,000 per batch), waits until the keeper has
all of them on disk, SIGKILLs the whole tree, starts it again on the same
directory and reports: the restore of the broker from the kept log, the
processors' restore, and the time from start to the "running" banner (every
role ready). It then checks the processor restored N live tasks.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from pathlib import Path

from streams.core.timefmt import format_rfc3339_ms
from tests.support.devrun import DevRun
from tests.support.waiting import wait_until

TOKEN = "bench-restart-token"
RESTORED = re.compile(r"restored (\d+) kept records to \d+ partitions in ([\d.]+) s")
PARTITION = re.compile(r"restored \S+\[\d+\]: (\d+) records, (\d+) live tasks, .* in ([\d.]+) s")


def kept_live_states(data_dir: Path) -> int:
    """Live task states on disk below the keeper's consistent cut (what a restore restores)."""
    path = data_dir / "kept.sqlite3"
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        row = conn.execute(
            "SELECT count(*) FROM kept JOIN state_cut USING (topic, part) "
            "WHERE kept.live = 1 AND kept.off < state_cut.cut"
        ).fetchone()
    return int(row[0])


def create_tasks(dev: DevRun, count: int, batch: int = 1_000) -> float:
    started = time.monotonic()
    due = time.time_ns() // 1_000_000 + 86_400_000
    for first in range(0, count, batch):
        tasks = [
            {
                "name": f"pending-{i}",
                "schedule": {"at": format_rfc3339_ms(due + i)},
                "target": {"http": {"url": "http://127.0.0.1:9/never"}},
            }
            for i in range(first, min(count, first + batch))
        ]
        status, body = dev.api.post("/v1/tasks:batch", {"tasks": tasks})
        if status != 202:
            raise RuntimeError(f"batch create answered {status}: {body}")
    return time.monotonic() - started


def run(count: int, work: Path) -> dict[str, float]:
    dev = DevRun(work, TOKEN)
    try:
        dev.start().wait_running(180)
        create_s = create_tasks(dev, count)
        copied = time.monotonic()
        wait_until(lambda: kept_live_states(dev.data_dir) >= count, 1800, "the keeper's copy")
        copy_s = time.monotonic() - copied
        dev.kill_tree()
        banner_s = dev.start().wait_running(3600)
        log = dev.log()
    finally:
        dev.kill_tree()
    restored = RESTORED.search(log)
    partitions = [(int(r), int(live), float(s)) for r, live, s in PARTITION.findall(log)]
    live = sum(p[1] for p in partitions)
    if live != count:
        raise RuntimeError(f"the processor restored {live} live tasks, not {count}")
    return {
        "tasks": count,
        "create_s": round(create_s, 1),
        "keeper_caught_up_after_s": round(copy_s, 1),
        "broker_restore_s": float(restored.group(2)) if restored else -1.0,
        "processor_restore_s": round(sum(p[2] for p in partitions), 1),
        "start_to_ready_s": round(banner_s, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(run(args.tasks, Path(work)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
