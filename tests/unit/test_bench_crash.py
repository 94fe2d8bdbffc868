"""The crash bench's pure parts: the outage read from role logs, gaps, the plan, the table."""

from __future__ import annotations

from datetime import datetime

from bench.crash import doubles, first_after, lateness_due_before, longest_gap_s, plan
from bench.crash_baselines import missing_module
from bench.crash_kronwheel import role_outage, stamp_ms
from bench.crash_report import rows
from bench.procstat import role_of
from bench.workloads import Delivery

KILLED = "2026-12-03 19:00:00,000"


def ms(stamp: str) -> int:
    return int(datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() * 1000)


def line(stamp: str, text: str) -> str:
    return f"{stamp} INFO streams.x[42] {text}"


def test_log_stamps_are_read_as_the_roles_write_them() -> None:
    assert stamp_ms(line("2026-12-03 19:00:01,250", "x")) == ms(KILLED) + 1_250
    assert stamp_ms("Traceback (most recent call last):") is None


def test_processor_outage_counts_from_the_start_of_its_first_restore() -> None:
    log = "\n".join(
        [
            line("2026-12-03 19:00:00,600", "processor started: group g, transactional id t"),
            line("2026-12-03 19:00:09,000", "assigned [] (restored; owns [])"),
            line("2026-12-03 19:00:12,500", "restored s[0] from offset 7: 1 records, in 0.50 s"),
            line(
                "2026-12-03 19:00:13,000",
                "restored s[1] from offset the start: 3 records, in 0.50 s",
            ),
            line("2026-12-03 19:00:13,010", "assigned [0, 1] (restored; owns [0, 1])"),
        ]
    )
    outage = role_outage("processor", log, ms(KILLED), ms(KILLED) + 10)
    assert outage == {
        "restarted_s": 0.01,
        "up_s": 0.6,
        "partitions_back_s": 12.0,
        "all_restored_s": 13.01,
        "restores": 2,
        "restore_s": 1.0,
    }


def test_dispatcher_outage_skips_an_empty_assignment() -> None:
    log = "\n".join(
        [
            line("2026-12-03 19:00:00,700", "dispatcher started, group g"),
            line("2026-12-03 19:00:03,000", "assigned []"),
            line("2026-12-03 19:00:11,700", "assigned [0, 1, 2]"),
        ]
    )
    outage = role_outage("dispatcher", log, ms(KILLED), ms(KILLED))
    assert outage == {"restarted_s": 0.0, "up_s": 0.7, "partitions_back_s": 11.7}


def test_silence_and_first_delivery_around_the_kill() -> None:
    arrivals = [1_000, 1_005, 1_010, 9_000, 9_001]
    assert longest_gap_s(arrivals, 1_012) == 7.99
    assert first_after(arrivals, 1_500, 1_012) == 7.99
    assert first_after(arrivals, 10_000, 1_012) is None


def test_doubles_are_listed_with_each_receive_after_the_kill() -> None:
    received = [Delivery("a@1", 1, 900), Delivery("b@2", 2, 950), Delivery("a@1", 1, 12_000)]
    assert doubles(received, 1_000) == {"a@1": [-0.1, 11.0]}


def test_lateness_before_the_crash_counts_each_firing_due_before_it_once() -> None:
    received = [Delivery("a@1", 100, 150), Delivery("a@1", 100, 9_000), Delivery("b@2", 600, 700)]
    assert lateness_due_before(received, 500) == [50.0]


def test_the_plan_creates_everything_before_the_first_is_due() -> None:
    workload = plan(12_000, 20.0)
    assert workload.last_due_ms - workload.first_due_ms == 59_995
    assert all(at <= workload.first_due_ms - 20_000 for at, _ in workload.batches())
    assert sum(len(chunk) for _, chunk in workload.batches()) == 12_000


def run(p99: float, delivered: int = 10) -> dict[str, object]:
    lateness = {"p50": 1.0, "p90": 2.0, "p99": p99, "max": p99}
    return {
        "broker": "b",
        "delivered": delivered,
        "missing": 10 - delivered,
        "doubled": 0,
        "lateness_ms": lateness,
        "cpu_s": {"total": 2.0},
        "lateness_before_crash_ms": lateness,
    }


def test_table_has_a_ratio_row_per_baseline_that_ran_and_says_why_one_did_not() -> None:
    table = rows(
        {
            "kronwheel": run(4_000.0),
            "apscheduler": run(1_000.0, delivered=9),
            "arq": {"broker": "Redis", "skipped": "no redis-server on PATH"},
        }
    )
    assert [table[0][-1], table[1][-1]] == ["no", "yes"]  # the p99 <= 2 s goal
    assert table[1][2] == "9/1/0"
    assert "not run: no redis-server on PATH" in table[2]
    assert [r[0] for r in table[3:]] == ["kronwheel / apscheduler"]
    assert table[3][5] == "4.0x"  # p99


def test_a_missing_baseline_package_is_named_with_how_to_install_it() -> None:
    why = missing_module("no_such_module_for_the_crash_bench")
    assert why is not None
    assert "no_such_module_for_the_crash_bench" in why
    assert "pip" in why
    assert missing_module("json") is None


def test_baseline_processes_are_named_in_the_cpu_split() -> None:
    assert role_of(["python", "-m", "bench.crash_arq", "worker"]) == "crash_arq"
    assert role_of(["python", "-m", "bench.crash_aps", "run"]) == "crash_aps"
    assert role_of(["redis-server 127.0.0.1:6379"]) == "redis-server"
