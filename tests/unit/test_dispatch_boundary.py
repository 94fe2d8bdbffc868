"""Issue 12 in the dispatcher: a firing record another producer wrote passes the same
rules before anything is called, and running one firing always ends in an attempt."""

from __future__ import annotations

from dataclasses import replace
from typing import cast

import pytest

from streams.core.attempts import Attempt
from streams.core.clock import FakeClock
from streams.core.errors import MalformedEvent
from streams.core.events import DueTask
from streams.core.model import HttpTarget, KafkaTarget, Outcome, RetryPolicy
from streams.dispatching.boundary import run_guarded
from streams.dispatching.targets import TargetRunner
from streams.kafka.records import decode_due, encode_due

DUE = DueTask(
    "t1:1000:1",
    "t1",
    "acme",
    "n",
    1_000,
    1,
    1_005,
    HttpTarget("https://example.com/"),
    RetryPolicy(),
)


@pytest.mark.parametrize(
    ("due", "reason"),
    [
        (
            replace(DUE, target=HttpTarget("https://e.com/", headers={"Transfer-Encoding": "x"})),
            "reserved_header",
        ),
        (replace(DUE, target=HttpTarget("https://e.com/", timeout_ms=0)), "timeout_ms"),
        (replace(DUE, target=HttpTarget("https://e.com/a b")), "invalid_url"),
        (replace(DUE, target=KafkaTarget("__consumer_offsets")), "kafka.topic"),
        (replace(DUE, attempt=0), "attempt"),
        (replace(DUE, scheduled_at_ms=2**62), "scheduled_at_ms"),
        (replace(DUE, retry=RetryPolicy(max_attempts=0)), "max_attempts"),
    ],
)
def test_a_firing_that_breaks_a_rule_does_not_decode(due: DueTask, reason: str) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode_due(encode_due(due))


def test_a_valid_firing_decodes() -> None:
    assert decode_due(encode_due(DUE)) == DUE


class BrokenRunner:
    async def run(self, due: DueTask) -> Attempt:
        raise KeyError("nobody expected this")


async def test_an_exception_running_one_target_is_a_failed_attempt() -> None:
    clock = FakeClock()
    attempt = await run_guarded(cast(TargetRunner, BrokenRunner()), DUE, clock)
    assert attempt.outcome is Outcome.FAILED
    assert attempt.error is not None
    assert "KeyError" in attempt.error
