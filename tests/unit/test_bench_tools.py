"""The comparison bench's pure parts: /proc parsing, CPU accounting, workload plans."""

from __future__ import annotations

import os

from bench.partitions import by_partition, murmur2, partition_of
from bench.procstat import Seen, TreeSampler, cpu_delta, parse_stat, role_of, ticks_by_role
from bench.workloads import Delivery, Workload, outcome

# proc(5): pid (comm) state ppid ... utime(14) stime(15) cutime(16) cstime(17) ...
STAT = "4242 (python3 -m x) y) S 17 4242 4242 0 -1 4194560 1 0 0 0 120 30 7 3 20 0 1 0 9 0 0"


def test_stat_line_survives_a_command_name_with_spaces_and_parentheses() -> None:
    line = parse_stat(STAT)
    assert (line.ppid, line.own_ticks, line.reaped_ticks) == (17, 150, 10)


def test_roles_are_named_by_kronwheel_role_broker_or_program() -> None:
    assert role_of(["/usr/bin/python3", "-m", "streams.cli", "dispatcher"]) == "dispatcher"
    assert role_of(["/opt/bin/tansu-v0.5", "--listener-url", "tcp://x"]) == "broker"
    assert role_of(["python", "-m", "bench.aps_baseline"]) == "aps_baseline"
    assert role_of(["/bin/sh"]) == "sh"


def test_a_reaped_child_that_was_seen_counts_once() -> None:
    seen = {
        1: Seen("dev", 0, own_ticks=10, reaped_ticks=55),  # 50 from child 2, 5 from one unseen
        2: Seen("api", 1, own_ticks=40, reaped_ticks=10, alive=False),
        3: Seen("broker", 1, own_ticks=7),
    }
    assert ticks_by_role(seen) == {"dev": 15, "api": 50, "broker": 7}


def test_cpu_delta_counts_processes_that_appeared_during_the_phase() -> None:
    delta = cpu_delta({"api": 1.0}, {"api": 3.0, "dispatcher": 0.5})
    assert delta == {"api": 2.0, "dispatcher": 0.5, "total": 2.5}


def test_sampler_reads_this_process() -> None:
    sampler = TreeSampler(os.getpid())
    sampler.sample()
    assert sum(sampler.cpu_by_role().values()) > 0
    assert sampler.peak_rss_mb()["total"] > 0


def test_steady_batches_are_created_lead_ahead_of_their_first_task() -> None:
    workload = Workload("steady", 2_500, first_due_ms=100_000, per_s=1_000, lead_ms=25_000)
    batches = workload.batches()
    assert [len(chunk) for _, chunk in batches] == [1_000, 1_000, 500]
    assert [at for at, _ in batches] == [75_000, 76_000, 77_000]
    keys = [key for _, chunk in batches for key, _ in chunk]
    assert len(set(keys)) == 2_500
    assert workload.last_due_ms == 100_000 + 2_499


def test_a_burst_falls_due_at_one_instant() -> None:
    workload = Workload("burst", 1_500, first_due_ms=5_000, per_s=0, lead_ms=1_000)
    assert set(workload.due_times()) == {5_000}
    assert [at for at, _ in workload.batches()] == [4_000, 4_000]
    assert Workload.from_json(workload.to_json()) == workload


def test_outcome_takes_the_first_delivery_and_counts_the_rest_as_doubled() -> None:
    deliveries = [
        Delivery("a", 1_000, 1_010),
        Delivery("b", 1_000, 1_200),
        Delivery("a", 1_000, 1_500),
    ]
    result = outcome(deliveries, expected=3)
    assert (result["delivered"], result["missing"], result["doubled"]) == (2, 1, 1)
    assert result["lateness_ms"]["max"] == 200
    assert result["drain_s"] == 0.2


def test_murmur2_matches_the_java_clients_known_values() -> None:
    # org.apache.kafka.common.utils.UtilsTest's cases (signed 32-bit there).
    cases = {b"21": -973932308, b"foobar": -790332482, b"abc": 479470107}
    cases[b"a-little-bit-longer-string"] = -1486304829
    for data, signed in cases.items():
        assert murmur2(data) == signed & 0xFFFFFFFF


def test_callbacks_split_by_partition_give_each_its_median_and_last_arrival() -> None:
    ids = [f"t{n}" for n in range(40)]
    firings = [(i, 1_000, 1_000 + 10 * partition_of(i, 3)) for i in ids]
    split = by_partition(firings, 3)
    assert {p: v["p50_ms"] for p, v in split.items()} == {"0": 0.0, "1": 10.0, "2": 20.0}
    assert sum(v["count"] for v in split.values()) == len(ids)
    assert split["2"]["last_s"] == 0.02
