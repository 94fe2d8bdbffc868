"""kronwheel dev against APScheduler 3, same workloads, same sink, same run.

    python -m bench compare [--scale 0.1] [--systems kronwheel,apscheduler]

Workloads (issue 15; ``--scale 1`` is the issue's full size):

* steady: 100,000 x scale one-time tasks due at 1,667/s (so over 60 s x scale),
  each created ``--lead-s`` ahead (25 s at scale 1);
* burst: 20,000 x scale one-time tasks due at one instant.

A third "system", bare-aiohttp, is the floor: the same client in one process
with a loop timer per call and no scheduler. When it is late, the machine is
the limit (a shared box, the sink), not either scheduler.

Each system runs alone (one after the other), both workloads, against the one
callback sink (an aiohttp server on 127.0.0.1 in this process recording the
receive time and the firing's identity). Measured per workload: delivered and
doubled callbacks, lateness (receive - scheduled) p50/p90/p99/max, drain time,
CPU seconds (user+sys of every process of the system's tree, from creating the
first task to the last delivery) and peak RSS (summed over the tree, whole
run). Prints a table with ratios against APScheduler and writes
.artifacts/bench/compare.json and compare.png. Numbers taken while other work
shares the machine are contaminated: the table prints the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

from bench.compare_report import print_profiles, print_tables, write_artifacts
from bench.partitions import by_partition
from bench.procstat import TreeSampler, cpu_delta
from bench.systems import ApsBaseline, CreateStats, KronwheelDev, KronwheelRoles, now_ms
from bench.workloads import Delivery, Workload, outcome
from streams.core.timefmt import parse_rfc3339_ms
from tests.support.harness import Callback, CallbackSink

FULL_STEADY = 100_000
FULL_BURST = 20_000
STEADY_PER_S = 1_667.0
START_SLACK_MS = 500  # between planning a workload and its first create


class System(Protocol):
    name: str

    @property
    def pid(self) -> int: ...

    def start(self, timeout_s: float = ...) -> None: ...

    def create(self, workload: Workload, sink_base: str) -> CreateStats: ...

    def stop(self) -> None: ...

    def log_tail(self) -> str: ...

    def sampler(self) -> TreeSampler: ...


def deliveries(callbacks: list[Callback], path: str) -> list[Delivery]:
    """The sink's callbacks for one workload: one firing = task id + scheduled time."""
    out = []
    for callback in callbacks:
        if callback.path != path:
            continue
        scheduled = callback.headers.get("Kronwheel-Scheduled-At", "")
        key = f"{callback.headers.get('Kronwheel-Task-Id', '')}@{scheduled}"
        out.append(Delivery(key, parse_rfc3339_ms(scheduled), callback.received_ms))
    return out


def sink_base(sink: CallbackSink, system: System) -> str:
    """Where a system's callbacks go: a path of its own, so runs never mix."""
    return f"{sink.url.removesuffix('/hook')}/{system.name}"


def wait_delivered(sink: CallbackSink, path: str, workload: Workload, timeout_s: float) -> None:
    """Until every task of the workload called back once (or the time runs out),
    then a moment more so late duplicates are seen too.

    Reads only the callbacks that arrived since the last look, and parses
    nothing: the sink's thread shares this process, and a poll that re-parsed
    every callback so far starved it (lateness grew with the count)."""
    deadline = time.monotonic() + max(0.0, (workload.last_due_ms - now_ms()) / 1000) + timeout_s
    keys: set[tuple[str, str]] = set()
    seen = 0
    while time.monotonic() < deadline and len(keys) < workload.count:
        time.sleep(0.25)
        new = sink.callbacks[seen:]  # one atomic slice; the sink only appends
        seen += len(new)
        keys.update(
            (c.headers.get("Kronwheel-Task-Id", ""), c.headers.get("Kronwheel-Scheduled-At", ""))
            for c in new
            if c.path == path
        )
    time.sleep(1.0)


def run_workload(
    system: System,
    sampler: TreeSampler,
    sink: CallbackSink,
    name: str,
    count: int,
    per_s: float,
    lead_ms: int,
    timeout_s: float,
) -> dict[str, Any]:
    workload = Workload(name, count, now_ms() + lead_ms + START_SLACK_MS, per_s, lead_ms)
    path = f"/{system.name}{workload.path}"
    before, bench_before = sampler.cpu_by_role(), _own_cpu_s()
    stats = system.create(workload, sink_base(sink, system))
    wait_delivered(sink, path, workload, timeout_s)
    cpu = cpu_delta(before, sampler.cpu_by_role())
    # This process (sink, kronwheel's REST client, sampler): the same sink work for
    # both systems, plus the create calls for kronwheel. Not in either system's CPU.
    bench_cpu_s = _own_cpu_s() - bench_before
    received = [c for c in sink.received() if c.path == path]
    result = outcome(deliveries(received, path), count)
    if isinstance(system, KronwheelDev):
        firings = [
            (
                c.headers.get("Kronwheel-Task-Id", ""),
                parse_rfc3339_ms(c.headers.get("Kronwheel-Scheduled-At", "")),
                c.received_ms,
            )
            for c in received
        ]
        result["by_partition"] = by_partition(firings, system.partitions)
    result["workload"] = workload.to_json()
    result["cpu_s"] = cpu
    result["cpu_ms_per_task"] = cpu["total"] * 1000 / max(count, 1)
    result["bench_process_cpu_s"] = bench_cpu_s
    result["create_failed_calls"] = stats.failed_calls
    if stats.ack_lag_ms:
        result["create_ack_lag_ms_max"] = max(stats.ack_lag_ms)
    return result


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_system(system: System, sink: CallbackSink, args: argparse.Namespace) -> dict[str, Any]:
    steady_count = max(1, round(FULL_STEADY * args.scale))
    burst_count = max(1, round(FULL_BURST * args.scale))
    lead_ms = round(args.lead_s * 1000)
    print(f"[{system.name}] starting", flush=True)
    system.start()
    try:
        with system.sampler() as sampler:
            # One task first: the whole path works (groups formed, partitions owned).
            warm = run_workload(system, sampler, sink, "warmup", 1, 0, 2_000, 120)
            if warm["delivered"] != 1:
                raise RuntimeError(f"{system.name}: the warm-up task never called back")
            results: dict[str, Any] = {}
            for name, count, per_s in (
                ("steady", steady_count, STEADY_PER_S),
                ("burst", burst_count, 0.0),
            ):
                print(f"[{system.name}] {name}: {count:,} tasks", flush=True)
                results[name] = run_workload(
                    system, sampler, sink, name, count, per_s, lead_ms, args.timeout_s
                )
            results["peak_rss_mb"] = sampler.peak_rss_mb()
    except Exception:
        print(system.log_tail())
        raise
    finally:
        system.stop()
    return results


def dev_env(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.startswith("KRONWHEEL_"):
            parser.error(f"--dev-env takes KRONWHEEL_NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench compare", description=__doc__)
    parser.add_argument("--scale", type=float, default=0.1, help="1 = the issue's full size")
    parser.add_argument("--lead-s", type=float, help="create ahead (default 25 x scale, >= 10)")
    parser.add_argument("--timeout-s", type=float, default=180.0, help="after the last due time")
    parser.add_argument(
        "--systems",
        default="kronwheel,apscheduler,bare-aiohttp",
        help="bare-aiohttp: no scheduler, a timer per call (the floor of the HTTP path)",
    )
    parser.add_argument(
        "--dispatchers",
        type=int,
        help="KRONWHEEL_DEV_DISPATCHERS for kronwheel dev (default: dev's)",
    )
    parser.add_argument(
        "--dev-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for kronwheel dev, for experiments (e.g. KRONWHEEL_PARTITIONS=2; "
        "repeatable); the bench otherwise runs dev with its defaults",
    )
    parser.add_argument("--out", type=Path, default=Path(".artifacts") / "bench")
    parser.add_argument(
        "--roles",
        action="store_true",
        help="start dev's processes from here instead of `kronwheel dev` (same topology)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run each kronwheel role under cProfile, writing DIR/<slot>.prof (implies --roles; "
        "profiling costs CPU: its CPU numbers are not the system's)",
    )
    args = parser.parse_args(argv)
    if args.profile is not None:
        os.environ["KRONWHEEL_PROFILE_DIR"] = str(args.profile.resolve())
        args.roles = True
    if args.lead_s is None:
        args.lead_s = max(10.0, 25.0 * args.scale)
    load_before = os.getloadavg()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work, CallbackSink() as sink:
        for name in args.systems.split(","):
            system: System
            if name == "kronwheel":
                Path(work, "kronwheel").mkdir()
                if args.roles:
                    system = KronwheelRoles(Path(work) / "kronwheel")
                else:
                    system = KronwheelDev(
                        Path(work) / "kronwheel", args.dispatchers, dev_env(parser, args.dev_env)
                    )
            elif name in ("apscheduler", "bare-aiohttp"):
                system = ApsBaseline(Path(work), bare=name == "bare-aiohttp")
            else:
                parser.error(f"unknown system {name!r}")
            runs[name] = run_system(system, sink, args)
    summary = {
        "kronwheel_started_as": "roles from the bench" if args.roles else "kronwheel dev",
        "dev_dispatchers": args.dispatchers,
        "dev_env": args.dev_env,
        "profiled": args.profile is not None,
        "scale": args.scale,
        "lead_s": args.lead_s,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "systems": runs,
    }
    print_tables(summary)
    json_path, png_path = write_artifacts(summary, args.out)
    print(f"wrote {json_path} and {png_path}")
    if args.profile is not None:
        print_profiles(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
