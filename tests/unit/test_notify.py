"""Outcome notifications: signed, sent only for what the task asked, never in the way."""

from __future__ import annotations

import orjson
import pytest

from streams.core.clock import FakeClock
from streams.core.events import DueTask, ExecutionResult
from streams.core.model import HttpTarget, NotifyPolicy, Outcome, RetryPolicy
from streams.core.netguard import Allowlist
from streams.core.signing import verify_signature
from streams.dispatching.guard import guarded_session
from streams.dispatching.limits import HostLimits
from streams.dispatching.notify import Notifier
from streams.dispatching.targets import GuardedHttp
from streams.metrics import NOTIFICATIONS
from tests.support.harness import CallbackSink

SCHEDULED = 1_800_000_000_000


def firing(notify_url: str, on: frozenset[Outcome]) -> DueTask:
    return DueTask(
        f"t1:{SCHEDULED}:2",
        "t1",
        "acme",
        "nightly",
        SCHEDULED,
        2,
        SCHEDULED,
        HttpTarget("https://example.com/hook"),
        RetryPolicy(2),
        notify=NotifyPolicy(notify_url, on),
    )


def outcome(result: Outcome, final: bool = True) -> ExecutionResult:
    return ExecutionResult(
        f"t1:{SCHEDULED}:2",
        "t1",
        "acme",
        SCHEDULED,
        2,
        result,
        final,
        SCHEDULED,
        SCHEDULED + 9,
        0,
        500,
        "HTTP 500",
        "d",
    )


def sent(result: str) -> float:
    return NOTIFICATIONS.labels(result=result)._value.get()  # type: ignore[no-any-return]


async def notify_all(
    allowlist: Allowlist, calls: list[tuple[DueTask, ExecutionResult]], max_pending: int = 100
) -> None:
    clock = FakeClock()
    async with guarded_session(allowlist, 8) as session:
        notifier = Notifier(
            GuardedHttp(session, allowlist, HostLimits(4, 0, clock)), clock, "s3cret", max_pending
        )
        for due, result in calls:
            notifier.notify(due, result)  # returns at once
        await notifier.close(grace_s=5.0)


async def test_a_final_failure_is_notified_signed() -> None:
    with CallbackSink() as sink:
        due = firing(sink.url, frozenset({Outcome.FAILED}))
        await notify_all(
            Allowlist.parse(("127.0.0.0/8",)),
            [(due, outcome(Outcome.FAILED)), (due, outcome(Outcome.SUCCEEDED))],
        )
        [callback] = sink.received()
    body = orjson.loads(callback.body)
    assert (body["fire_id"], body["outcome"], body["final"]) == (
        f"t1:{SCHEDULED}:2",
        "failed",
        True,
    )
    assert callback.headers["Idempotency-Key"] == f"notify:t1:{SCHEDULED}:2"
    assert verify_signature(
        "s3cret",
        callback.headers["Kronwheel-Signature"],
        callback.body,
        FakeClock().now_ms() // 1000,
    )


async def test_attempts_that_will_be_retried_are_not_notified() -> None:
    with CallbackSink() as sink:
        due = firing(sink.url, frozenset({Outcome.FAILED}))
        await notify_all(
            Allowlist.parse(("127.0.0.0/8",)), [(due, outcome(Outcome.FAILED, final=False))]
        )
        assert sink.received() == []


async def test_a_refused_notify_url_is_counted_and_never_raises() -> None:
    before = sent("failed")
    # Loopback, refused because the allowlist is empty: a broken guard stays on this machine.
    due = firing("http://127.0.0.1:9/latest", frozenset({Outcome.FAILED}))
    await notify_all(Allowlist(), [(due, outcome(Outcome.FAILED))])
    assert sent("failed") == before + 1


@pytest.mark.parametrize("max_pending", [1])
async def test_too_many_pending_notifications_are_dropped_and_counted(max_pending: int) -> None:
    before = sent("dropped")
    with CallbackSink() as sink:
        due = firing(sink.url, frozenset({Outcome.FAILED}))
        await notify_all(
            Allowlist.parse(("127.0.0.0/8",)),
            [(due, outcome(Outcome.FAILED))] * 3,
            max_pending=max_pending,
        )
        assert len(sink.received()) == 1
    assert sent("dropped") == before + 2
