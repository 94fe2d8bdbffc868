"""Admission of fetched firings: round robin over tenants, then over partitions."""

from __future__ import annotations

from streams.dispatching.admission import Admission, partitions_to_pause


def drain(admission: Admission[str]) -> list[str]:
    started = []
    while (picked := admission.next()) is not None:
        tenant, item = picked
        started.append(item)
        admission.done(tenant)
    return started


def test_a_backlog_on_several_partitions_starts_in_turn_not_one_partition_first() -> None:
    admission: Admission[str] = Admission(capacity=4, share=1.0)
    for partition in range(3):  # fetched partition by partition, as a backlog is
        for n in range(3):
            admission.add("acme", partition, f"p{partition}-{n}")
    assert drain(admission) == [f"p{p}-{n}" for n in range(3) for p in range(3)]


def test_a_tenant_holds_at_most_its_share_and_the_other_gets_the_rest() -> None:
    admission: Admission[str] = Admission(capacity=4, share=0.5)
    for n in range(10):
        admission.add("busy", n % 2, f"busy-{n}")
    started = [admission.next() for _ in range(2)]
    assert admission.next() is None, "a third place went to a tenant at its share"
    admission.add("quiet", 0, "quiet-0")
    assert admission.next() == ("quiet", "quiet-0")
    assert [s[0] for s in started if s] == ["busy", "busy"]
    assert admission.in_flight == 3


def test_nothing_starts_beyond_the_capacity_until_one_is_done() -> None:
    admission: Admission[str] = Admission(capacity=2, share=1.0)
    for n in range(4):
        admission.add("acme", n, f"item-{n}")
    assert admission.next() == ("acme", "item-0")
    assert admission.next() == ("acme", "item-1")
    assert admission.next() is None
    admission.done("acme")
    assert admission.next() == ("acme", "item-2")
    assert admission.waiting == 1


def test_each_partition_pauses_at_its_share_and_resumes_at_half_of_it() -> None:
    held = {0: 40, 1: 10, 2: 0, 3: 30}  # a read-ahead of 160 over 4 partitions: 40 each
    assert partitions_to_pause(held, set(), read_ahead=160) == {0}
    assert partitions_to_pause({**held, 0: 21}, {0}, read_ahead=160) == {0}
    assert partitions_to_pause({**held, 0: 20}, {0}, read_ahead=160) == set()
    assert partitions_to_pause({}, set(), read_ahead=160) == set()
