"""One crash, against what users compare kronwheel with (issue 13).

    python -m bench crash [--scale 1] [--systems kronwheel,apscheduler,arq]

12,000 one-time tasks (x scale) due at 200/s, so over 60 s, all created before
the first falls due; 30 s in (half-way) the process that fires them is
SIGKILLed and started again at once:

* kronwheel: the processor and the dispatcher, each restarted in its slot
  (bench.crash_kronwheel); on the embedded broker, or on the Kafka in
  KAFKA_BOOTSTRAP_SERVERS when set;
* apscheduler: APScheduler 3, SQLAlchemy job store on SQLite (bench.crash_aps);
* arq: an arq worker, jobs in a Redis of the bench's own (bench.crash_arq).

All call back one sink (an aiohttp server on 127.0.0.1 in this process that
records the receive time). Per system: delivered, lost, doubled (by task id
and scheduled time), lateness (receive - scheduled) p50/p90/p99/max, CPU
seconds of every process the system runs (the embedded broker and Redis
included; a real Kafka not), and the outage: when each killed process was
started again, came up, got its work back and fired or delivered again, in
seconds after the kill. Prints a table with ratios against the baselines and
writes .artifacts/bench/crash-<broker>.json. A baseline that cannot run
(redis-server or a package missing) or failed is a row that says why.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bench.compare import deliveries, sink_base, wait_delivered
from bench.crash_baselines import ApsCrash, ArqCrash
from bench.crash_child import now_ms
from bench.crash_kronwheel import KronwheelCrash
from bench.crash_report import print_table, write_json
from bench.procstat import TreeSampler, cpu_delta
from bench.workloads import Delivery, Workload, lateness_summary, outcome
from tests.support.harness import CallbackSink

FULL_TASKS = 12_000
PER_S = 200.0


class CrashSystem(Protocol):
    name: str

    def prep_s(self, count: int) -> float: ...

    @property
    def broker(self) -> str: ...

    def unavailable(self) -> str | None: ...

    def start(self) -> None: ...

    def load(self, workload: Workload, url_base: str) -> None: ...

    def crash(self) -> None: ...

    def killed_ms(self) -> int: ...

    def restarted_ms(self) -> int: ...

    def outage(self) -> dict[str, Any]: ...

    def log_tail(self) -> str: ...

    def stop(self) -> None: ...


SYSTEMS: dict[str, Callable[[Path], CrashSystem]] = {
    "kronwheel": KronwheelCrash,
    "apscheduler": ApsCrash,
    "arq": ArqCrash,
}


def plan(count: int, prep_s: float) -> Workload:
    """``count`` tasks at 200/s from ``prep_s`` from now, all to be created at once
    (the lead covers the whole window)."""
    first_due = now_ms() + round(prep_s * 1000)
    window_ms = round(count / PER_S * 1000)
    return Workload("crash", count, first_due, PER_S, round(prep_s * 1000) + window_ms)


def sleep_until(ms: int) -> None:
    time.sleep(max(0.0, (ms - now_ms()) / 1000))


def run_system(system: CrashSystem, sink: CallbackSink, count: int, timeout_s: float) -> Any:
    why = system.unavailable()
    if why is not None:
        print(f"[{system.name}] cannot run: {why}", flush=True)
        return {"broker": system.broker, "skipped": why}
    print(f"[{system.name}] starting", flush=True)
    system.start()
    try:
        # Every process of the system is a child of this one; this one (the sink,
        # the REST creates) is left out.
        with TreeSampler(os.getpid(), include_root=False) as sampler:
            prep_s = system.prep_s(count)
            workload = plan(count, prep_s)
            path = f"/{system.name}{workload.path}"
            before = sampler.cpu_by_role()
            print(f"[{system.name}] creating {count:,} tasks", flush=True)
            system.load(workload, sink_base(sink, system))  # type: ignore[arg-type]
            if now_ms() > workload.first_due_ms:
                raise RuntimeError(f"{system.name}: creating took longer than {prep_s} s")
            crash_at = workload.first_due_ms + round(count / PER_S * 500)  # half-way
            sleep_until(crash_at)
            system.crash()
            print(f"[{system.name}] killed and restarted; waiting for the rest", flush=True)
            wait_delivered(sink, path, workload, timeout_s)
            cpu = cpu_delta(before, sampler.cpu_by_role())
        received = deliveries(sink.received(), path)
        result: dict[str, Any] = outcome(received, count)
        result.pop("_lateness")
        arrivals = result.pop("_arrivals")
        killed, restarted = system.killed_ms(), system.restarted_ms()
        result.update(
            broker=system.broker,
            workload=workload.to_json(),
            crash_at_ms=crash_at,
            cpu_s=cpu,
            outage=system.outage(),
            delivered_again_s=first_after(arrivals, restarted, killed),
            longest_silence_s=longest_gap_s(arrivals, killed),
            doubled_received_s=doubles(received, killed),
            # The same system without the crash, in the same run: how late the
            # firings due before the kill were.
            lateness_before_crash_ms=lateness_summary(lateness_due_before(received, crash_at)),
        )
        return result
    except Exception:
        print(system.log_tail())
        raise
    finally:
        system.stop()


def first_after(arrivals: list[int], since_ms: int, killed_ms: int) -> float | None:
    """Seconds from the kill to the first callback received after ``since_ms``."""
    later = [ms for ms in arrivals if ms >= since_ms]
    return round((min(later) - killed_ms) / 1000, 2) if later else None


def doubles(received: list[Delivery], killed_ms: int, shown: int = 20) -> dict[str, list[float]]:
    """For a few firings delivered more than once: each receive, seconds after the kill."""
    times: dict[str, list[float]] = defaultdict(list)
    for delivery in received:
        times[delivery.key].append(round((delivery.received_ms - killed_ms) / 1000, 2))
    doubled = {key: sorted(seen) for key, seen in times.items() if len(seen) > 1}
    return dict(sorted(doubled.items())[:shown])


def lateness_due_before(received: list[Delivery], crash_at_ms: int) -> list[float]:
    """Lateness of the first delivery of each firing scheduled before the crash."""
    first: dict[str, Delivery] = {}
    for delivery in received:
        if delivery.scheduled_ms < crash_at_ms and delivery.key not in first:
            first[delivery.key] = delivery
    return [float(d.received_ms - d.scheduled_ms) for d in first.values()]


def longest_gap_s(arrivals: list[int], around_ms: int) -> float:
    """The longest time without a callback that spans ``around_ms`` (the kill)."""
    before = [ms for ms in arrivals if ms <= around_ms]
    after = [ms for ms in arrivals if ms > around_ms]
    if not before or not after:
        return float("nan")
    return round((min(after) - max(before)) / 1000, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench crash", description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1 = 12,000 tasks over 60 s")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--timeout-s", type=float, default=90.0, help="after the last due time")
    parser.add_argument("--out", type=Path, default=Path(".artifacts") / "bench")
    args = parser.parse_args(argv)
    count = max(2, round(FULL_TASKS * args.scale))
    load_before = os.getloadavg()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as work, CallbackSink() as sink:
        for name in args.systems.split(","):
            if name not in SYSTEMS:
                parser.error(f"unknown system {name!r}")
            system = SYSTEMS[name](Path(work))
            try:
                runs[name] = run_system(system, sink, count, args.timeout_s)
            except Exception as error:  # the other systems' numbers still count
                print(f"[{name}] failed: {error}", flush=True)
                runs[name] = {"broker": system.broker, "skipped": f"failed: {error}"}
    summary = {
        "tasks": count,
        "per_s": PER_S,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "systems": runs,
    }
    print_table(summary)
    print(f"wrote {write_json(summary, args.out)}")
    return 0
