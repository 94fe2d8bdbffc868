"""The SSRF guard on real connections: refused address classes, the allowlist, pinning
(a rebinding host name cannot slip through), no redirects, signed callbacks.

Servers listen on 127.0.0.1 only; "DNS" is a scripted resolver. Every address a
live test hands the guard is a loopback one (refused because loopback is not on the
allowlist, or because it is outside an allowlisted /32), so even a broken guard
would send nothing off the machine; the other refused classes are checked on the
decision function alone, which opens no connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from streams.core.clock import FakeClock
from streams.core.events import DueTask
from streams.core.ids import fire_id
from streams.core.model import HttpTarget, Outcome, RetryPolicy
from streams.core.netguard import Allowlist, check_target
from streams.core.signing import verify_signature
from streams.dispatching.guard import (
    REMEMBERED_VERDICTS,
    TargetRefused,
    guarded_session,
    literal_refusal,
)
from streams.dispatching.limits import HostLimits
from streams.dispatching.targets import GuardedHttp, TargetRunner
from streams.kafka.broker import free_loopback_port
from tests.support.harness import CallbackSink


class ScriptedDns(AbstractResolver):
    """Answers each lookup of a name with the next scripted list of addresses."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.lookups: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.lookups.append(host)
        answers = self.script[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as running:
        yield running


async def call(url: str, allowlist: Allowlist, dns: ScriptedDns | None = None) -> int:
    async with guarded_session(allowlist, 8, dns) as session:
        http = GuardedHttp(session, allowlist, HostLimits(4, 0, FakeClock()))
        return await http.call("POST", url, b"{}", {}, 5_000)


# Checked on the decision function only (no connection is ever attempted).
REFUSED_CLASSES = {
    "loopback": "127.0.0.1",
    "private-10": "10.1.2.3",
    "private-172": "172.16.5.4",
    "private-192": "192.168.0.10",
    "link-local": "169.254.1.1",
    "cloud-metadata": "169.254.169.254",
    "multicast": "224.0.0.251",
    "unspecified": "0.0.0.0",
    "ipv6-loopback": "::1",
    "ipv6-unique-local": "fd12::1",
    "ipv6-link-local": "fe80::1",
    "ipv4-mapped-loopback": "::ffff:127.0.0.1",
}


# Live: loopback in every spelling the resolver may return.
LOOPBACK_ANSWERS = {
    "loopback": "127.0.0.1",
    "loopback-other": "127.3.2.1",
    "ipv6-loopback": "::1",
    "ipv4-mapped-loopback": "::ffff:127.0.0.1",
}


@pytest.mark.parametrize("address", REFUSED_CLASSES.values(), ids=REFUSED_CLASSES.keys())
def test_each_refused_class_is_refused_by_the_decision(address: str) -> None:
    assert check_target("hooks.example", [ipaddress.ip_address(address)], Allowlist()) is not None


@pytest.mark.parametrize("address", LOOPBACK_ANSWERS.values(), ids=LOOPBACK_ANSWERS.keys())
async def test_a_refused_answer_is_refused_by_name(address: str, sink: CallbackSink) -> None:
    dns = ScriptedDns({"hooks.example": [[address]]})
    with pytest.raises(TargetRefused, match="KRONWHEEL_TARGET_ALLOWLIST"):
        await call(f"http://hooks.example:{sink.port}/hook", Allowlist(), dns)
    assert sink.received() == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.8.8", "[::1]", "[::ffff:127.0.0.1]"])
async def test_ip_literal_targets_are_refused_too(host: str, sink: CallbackSink) -> None:
    with pytest.raises(TargetRefused):
        await call(f"http://{host}:{sink.port}/hook", Allowlist())
    assert sink.received() == []


async def test_allowlisted_cidr_and_host_name_are_called(sink: CallbackSink) -> None:
    assert await call(sink.url, Allowlist.parse(("127.0.0.0/8",))) == 200
    dns = ScriptedDns({"internal.example": [["127.0.0.1"]]})
    allow = Allowlist.parse(("internal.example",))
    assert await call(f"http://internal.example:{sink.port}/hook", allow, dns) == 200
    assert len(sink.received()) == 2


async def test_a_rebinding_name_is_checked_and_connected_with_one_answer(
    sink: CallbackSink,
) -> None:
    # Allowed: 127.0.0.1 only. The name answers 127.0.0.1 first (passes the check,
    # and the connection goes exactly there), then 127.0.0.7, refused (outside the
    # /32; loopback so that even a broken guard stays on this machine): a guard that
    # resolved again to connect would be steered to it; this one never resolves twice
    # for one connection, and refuses the second answer when it is asked again.
    dns = ScriptedDns({"rebind.example": [["127.0.0.1"], ["127.0.0.7"], ["127.0.0.7"]]})
    allow = Allowlist.parse(("127.0.0.1/32",))
    url = f"http://rebind.example:{sink.port}/hook"
    async with guarded_session(allow, 8, dns) as session:
        http = GuardedHttp(session, allow, HostLimits(4, 0, FakeClock()))
        assert await http.call("POST", url, b"{}", {}, 5_000) == 200
        assert dns.lookups == ["rebind.example"]
    async with guarded_session(allow, 8, dns) as session:
        http = GuardedHttp(session, allow, HostLimits(4, 0, FakeClock()))
        with pytest.raises(TargetRefused, match=r"127\.0\.0\.7"):
            await http.call("POST", url, b"{}", {}, 5_000)
    assert len(sink.received()) == 1


async def test_one_refused_address_in_an_answer_refuses_the_whole_answer(
    sink: CallbackSink,
) -> None:
    dns = ScriptedDns({"mixed.example": [["127.0.0.1", "127.0.0.8"]]})
    with pytest.raises(TargetRefused):
        await call(
            f"http://mixed.example:{sink.port}/hook", Allowlist.parse(("127.0.0.1/32",)), dns
        )
    assert sink.received() == []


async def test_redirects_are_not_followed() -> None:
    with CallbackSink(status=302) as redirecting:
        status = await call(redirecting.url, Allowlist.parse(("127.0.0.0/8",)))
        assert status == 302
        assert len(redirecting.received()) == 1


def due_for(url: str) -> DueTask:
    scheduled = 1_800_000_000_000
    return DueTask(
        fire_id("t9", scheduled, 2),
        "t9",
        "acme",
        "n",
        scheduled,
        2,
        scheduled,
        HttpTarget(url, body='{"hello": 1}', headers={"X-Task": "yes"}),
        RetryPolicy(3),
    )


async def test_a_callback_is_signed_and_carries_the_contract_headers(sink: CallbackSink) -> None:
    clock = FakeClock()
    allow = Allowlist.parse(("127.0.0.0/8",))
    async with guarded_session(allow, 8) as session:
        http = GuardedHttp(session, allow, HostLimits(4, 0, clock))
        runner = TargetRunner(http, producer=None, clock=clock, signing_secret="s3cret")  # type: ignore[arg-type]
        attempt = await runner.run(due_for(sink.url))
    assert (attempt.outcome, attempt.http_status) == (Outcome.SUCCEEDED, 200)
    [callback] = sink.received()
    headers = callback.headers
    assert headers["Idempotency-Key"] == "t9:1800000000000:2"
    assert headers["Kronwheel-Attempt"] == "2"
    assert headers["Kronwheel-Task-Id"] == "t9"
    assert headers["X-Task"] == "yes"
    now_s = clock.now_ms() // 1000
    assert verify_signature("s3cret", headers["Kronwheel-Signature"], callback.body, now_s)
    assert not verify_signature("wrong", headers["Kronwheel-Signature"], callback.body, now_s)
    assert not verify_signature("s3cret", headers["Kronwheel-Signature"], b"tampered", now_s)
    assert not verify_signature(
        "s3cret", headers["Kronwheel-Signature"], callback.body, now_s + 3600
    )


async def test_a_refused_target_is_a_failed_attempt_with_the_reason() -> None:
    clock = FakeClock()
    async with guarded_session(Allowlist(), 8) as session:
        http = GuardedHttp(session, Allowlist(), HostLimits(4, 0, clock))
        runner = TargetRunner(http, producer=None, clock=clock, signing_secret=None)  # type: ignore[arg-type]
        attempt = await runner.run(due_for("http://127.0.0.1:9/hook"))
    assert attempt.outcome is Outcome.FAILED
    assert attempt.error is not None
    assert "loopback" in attempt.error


async def test_an_unreachable_target_is_a_failed_attempt() -> None:
    clock = FakeClock()
    allow = Allowlist.parse(("127.0.0.0/8",))
    async with guarded_session(allow, 8) as session:
        http = GuardedHttp(session, allow, HostLimits(4, 0, clock))
        runner = TargetRunner(http, producer=None, clock=clock, signing_secret=None)  # type: ignore[arg-type]
        # A free port: nothing listens there, the connection is refused.
        attempt = await runner.run(due_for(f"http://127.0.0.1:{free_loopback_port()}/hook"))
    assert attempt.outcome is Outcome.FAILED
    assert attempt.http_status is None
    assert attempt.error


async def test_a_call_waiting_for_its_hosts_slot_is_stamped_when_it_goes_out(
    sink: CallbackSink,
) -> None:
    clock = FakeClock()
    allow = Allowlist.parse(("127.0.0.0/8",))
    limits = HostLimits(1, 0, clock)
    async with guarded_session(allow, 8) as session:
        http = GuardedHttp(session, allow, limits)
        runner = TargetRunner(http, producer=None, clock=clock, signing_secret=None)  # type: ignore[arg-type]
        fetched_ms = clock.now_ms()
        async with limits.slot(f"127.0.0.1:{sink.port}"):  # the host is busy
            call = asyncio.create_task(runner.run(due_for(sink.url)))
            for _ in range(20):
                await asyncio.sleep(0)
            assert not call.done()
            clock.advance(5_000)
        attempt = await call
    assert attempt.outcome is Outcome.SUCCEEDED
    assert attempt.started_at_ms == fetched_ms + 5_000, "the wait for the slot counted as the call"
    assert attempt.finished_at_ms - attempt.started_at_ms == 0


async def test_a_remembered_verdict_still_refuses_and_stays_bounded(sink: CallbackSink) -> None:
    async with guarded_session(Allowlist(), 8) as session:
        http = GuardedHttp(session, Allowlist(), HostLimits(4, 0, FakeClock()))
        for _ in range(2):  # the second verdict is a remembered one
            with pytest.raises(TargetRefused, match="loopback"):
                await http.call("POST", f"http://127.0.0.1:{sink.port}/hook", b"", {}, 1_000)
        assert literal_refusal.cache_info().hits >= 1
        for n in range(REMEMBERED_VERDICTS + 5):
            with pytest.raises(TargetRefused):
                await http.call("POST", f"http://127.1.{n // 250}.{n % 250}:9/", b"", {}, 1_000)
        assert literal_refusal.cache_info().currsize <= REMEMBERED_VERDICTS
    assert sink.received() == []
