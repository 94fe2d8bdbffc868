"""Issue 12: the SSRF guard decides on the host the HTTP client will connect to.

aiohttp (through yarl) maps a host with IDNA / UTS-46 before it connects, so
127.0.0.1 spelled in full-width or circled digits, or with ideographic full
stops, is the IP literal 127.0.0.1 and never reaches a resolver. These are
loopback spellings only: the live tests call a sink on 127.0.0.1 with loopback
NOT allowed (refused, nothing arrives) and allowed (it arrives: proof the
spelling really is loopback).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.core.clock import FakeClock
from streams.core.netguard import Allowlist, canonical_host, literal_address
from streams.dispatching.guard import TargetRefused, guarded_session
from streams.dispatching.limits import HostLimits
from streams.dispatching.targets import GuardedHttp
from tests.support.harness import CallbackSink

SPELLINGS = [
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits
    "127\u30020\u30020\u30021",  # ideographic full stops
    "127\uff0e0\uff0e0\uff0e1",  # full-width full stops
    "\u2460\u2461\u2466.0.0.\u2460",  # circled digits
    "127.0.0.\u00b9",  # superscript one
]


@pytest.mark.parametrize("host", SPELLINGS)
def test_unicode_spellings_normalise_to_the_loopback_literal(host: str) -> None:
    canonical = canonical_host(f"http://{host}:8080/x")
    assert canonical == "127.0.0.1"
    address = literal_address(canonical)
    assert address is not None
    assert address.is_loopback


def test_names_stay_names_and_ipv6_literals_lose_their_brackets() -> None:
    assert canonical_host("http://Hooks.Example/x") == "hooks.example"
    assert literal_address("hooks.example") is None
    assert canonical_host("http://[::1]:9/") == "::1"


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as running:
        yield running


async def call(url: str, allowlist: Allowlist) -> int:
    async with guarded_session(allowlist, 8) as session:
        http = GuardedHttp(session, allowlist, HostLimits(4, 0, FakeClock()))
        return await http.call("POST", url, b"{}", {}, 5_000)


@pytest.mark.parametrize("host", SPELLINGS)
async def test_the_dispatcher_refuses_a_unicode_loopback_target(
    host: str, sink: CallbackSink
) -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await call(f"http://{host}:{sink.port}/hook", Allowlist())
    assert sink.received() == []


async def test_allowed_the_same_spelling_reaches_the_loopback_sink(sink: CallbackSink) -> None:
    assert (
        await call(f"http://{SPELLINGS[0]}:{sink.port}/hook", Allowlist.parse(("127.0.0.0/8",)))
        == 200
    )
    assert len(sink.received()) == 1
