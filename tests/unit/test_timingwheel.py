"""The hierarchical wheel against a trivially correct oracle (a heap on a mock clock)."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.core.timingwheel import TimingWheel


class HeapOracle:
    """What a timer service must do: fire each live timer once, at or after its time."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms
        self.due: dict[int, int] = {}
        self.heap: list[tuple[int, int]] = []

    def add(self, key: int, due_ms: int) -> bool:
        self.due.pop(key, None)
        if due_ms <= self.now_ms:
            return False
        self.due[key] = due_ms
        heapq.heappush(self.heap, (due_ms, key))
        return True

    def cancel(self, key: int) -> bool:
        return self.due.pop(key, None) is not None

    def advance(self, now_ms: int) -> list[tuple[int, int]]:
        self.now_ms = max(self.now_ms, now_ms)
        fired = []
        while self.heap and self.heap[0][0] <= self.now_ms:
            due_ms, key = heapq.heappop(self.heap)
            if self.due.get(key) == due_ms:
                del self.due[key]
                fired.append((key, due_ms))
        return fired


operations = st.lists(
    st.one_of(
        # offsets reach past several levels of a 4-bucket wheel, and far beyond
        st.tuples(st.just("add"), st.integers(0, 30), st.integers(-5, 5_000)),
        st.tuples(st.just("add"), st.integers(0, 30), st.integers(0, 10_000_000)),
        st.tuples(st.just("cancel"), st.integers(0, 30), st.just(0)),
        st.tuples(st.just("advance"), st.just(0), st.integers(0, 300)),
        st.tuples(st.just("advance"), st.just(0), st.integers(0, 3_000_000)),
    ),
    max_size=200,
)


@settings(max_examples=400, deadline=None)
@given(start=st.integers(0, 10**13), wheel_size=st.sampled_from([2, 4, 64]), ops=operations)
def test_wheel_matches_heap_oracle(
    start: int, wheel_size: int, ops: list[tuple[str, int, int]]
) -> None:
    wheel: TimingWheel[int] = TimingWheel(start, wheel_size=wheel_size)
    oracle = HeapOracle(start)
    now = start
    for op, key, amount in ops:
        if op == "add":
            assert wheel.add(key, now + amount) == oracle.add(key, now + amount)
        elif op == "cancel":
            assert wheel.cancel(key) == oracle.cancel(key)
        else:
            now += amount
            fired = wheel.advance(now)
            expected = oracle.advance(now)
            assert sorted(fired, key=lambda x: (x[1], x[0])) == sorted(
                expected, key=lambda x: (x[1], x[0])
            )
            assert [due for _, due in fired] == sorted(due for _, due in fired)
        assert len(wheel) == len(oracle.due)
        assert all(wheel.due_ms(k) == d for k, d in oracle.due.items())
        earliest = min(oracle.due.values(), default=None)
        expiry = wheel.next_expiry_ms()
        # Never sleeps past the earliest timer; an idle wheel has nothing to wake for.
        assert (expiry is None) == (earliest is None)
        if expiry is not None and earliest is not None:
            assert now < expiry <= earliest or expiry <= now


def test_worked_example_from_the_docstring() -> None:
    wheel: TimingWheel[str] = TimingWheel(100, wheel_size=4)
    assert wheel.add("a", 102)
    assert wheel.add("b", 109)
    assert wheel.add("c", 150)
    assert wheel.advance(101) == []
    assert wheel.advance(102) == [("a", 102)]
    assert wheel.advance(108) == []
    assert wheel.advance(109) == [("b", 109)]
    assert wheel.advance(149) == []
    assert wheel.advance(150) == [("c", 150)]
    assert len(wheel) == 0
    assert wheel.next_expiry_ms() is None


def test_a_due_timer_is_refused_so_the_caller_runs_it_now() -> None:
    wheel: TimingWheel[str] = TimingWheel(1_000)
    assert wheel.add("late", 1_000) is False
    assert wheel.add("past", 10) is False
    assert "late" not in wheel
    assert len(wheel) == 0


def test_moving_and_cancelling_a_timer() -> None:
    wheel: TimingWheel[str] = TimingWheel(0)
    wheel.add("t", 5_000_000)
    wheel.add("t", 10)  # moved: one timer per key
    assert len(wheel) == 1
    assert wheel.due_ms("t") == 10
    assert wheel.advance(10) == [("t", 10)]
    wheel.add("u", 20)
    assert wheel.cancel("u")
    assert not wheel.cancel("u")
    assert wheel.advance(10_000_000) == []


def test_a_far_future_timer_costs_a_few_cascades_not_a_scan() -> None:
    wheel: TimingWheel[int] = TimingWheel(0, wheel_size=64)
    wheel.add(1, 30 * 24 * 3_600_000)  # a month out
    wakeups = 0
    now = 0
    while (expiry := wheel.next_expiry_ms()) is not None:
        now = expiry
        wakeups += 1
        fired = wheel.advance(now)
    assert fired == [(1, 30 * 24 * 3_600_000)]
    assert wakeups <= 6  # once per level on the way down
