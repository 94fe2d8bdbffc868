"""`python -m bench compare` end to end at a tiny scale (a few hundred tasks per system).

Skipped unless KRONWHEEL_BENCH_SMOKE=1: it starts `kronwheel dev` and the
APScheduler baseline and the bare client one after the other and takes about a minute, which the
normal suite should not pay. It checks that the instrument works (every task
counted, CPU and memory read from /proc), not how fast anything is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.compare import main

pytestmark = pytest.mark.skipif(
    os.environ.get("KRONWHEEL_BENCH_SMOKE") != "1", reason="set KRONWHEEL_BENCH_SMOKE=1 to run"
)


@pytest.mark.timeout(400)
def test_compare_measures_both_systems_on_both_workloads(tmp_path: Path) -> None:
    pytest.importorskip("apscheduler", reason="the baseline needs APScheduler 3 (test extra)")
    assert main(["--scale", "0.005", "--lead-s", "6", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "compare.json").read_text())
    for system in ("kronwheel", "apscheduler", "bare-aiohttp"):
        run = summary["systems"][system]
        for workload, count in (("steady", 500), ("burst", 100)):
            result = run[workload]
            assert (result["expected"], result["delivered"], result["doubled"]) == (count, count, 0)
            assert result["cpu_s"]["total"] > 0
        assert run["peak_rss_mb"]["total"] > 0
    kronwheel_roles = set(summary["systems"]["kronwheel"]["steady"]["cpu_s"])
    assert {"broker", "processor", "dispatcher", "api"} <= kronwheel_roles
    assert (tmp_path / "compare.png").stat().st_size > 0
