"""Issue 12: one tenant's slow targets cannot take the dispatcher's slots from another.

The live part calls two aiohttp servers on 127.0.0.1 (loopback allowlisted):
one that holds every request until the test lets it go, one that answers at
once. No wall time is asserted; wait_for only bounds a hang.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.core.clock import FakeClock
from streams.core.netguard import Allowlist
from streams.dispatching.fairness import CachedResolve, FairSlots, host_key
from streams.dispatching.guard import guarded_session
from streams.dispatching.limits import HostLimits
from streams.dispatching.targets import GuardedHttp

HANG_GUARD_S = 10


async def test_a_tenant_holds_at_most_its_share() -> None:
    slots = FairSlots(4, share=0.5)
    async with slots.slot("a"), slots.slot("a"):
        third = asyncio.create_task(_hold(slots, "a", asyncio.Event()))
        await asyncio.sleep(0)
        assert slots.held("a") == 2, "a third slot for a would exceed its share"
        async with slots.slot("b"), slots.slot("b"):  # b never waits behind a
            assert slots.in_use == 4
        third.cancel()
    assert slots.in_use == 0


async def test_freed_slots_go_to_waiting_tenants_in_turn() -> None:
    slots = FairSlots(2, share=1.0)
    release = asyncio.Event()
    holders = [asyncio.create_task(_hold(slots, "a", release)) for _ in range(2)]
    await asyncio.sleep(0)
    order: list[str] = []
    waiting = [asyncio.create_task(_note(slots, "a", order)) for _ in range(5)]
    await asyncio.sleep(0)
    late_b = asyncio.create_task(_note(slots, "b", order))
    await asyncio.sleep(0)
    release.set()
    await asyncio.wait_for(asyncio.gather(*holders, *waiting, late_b), HANG_GUARD_S)
    # b arrived after five of a's: it still gets one of the next two freed slots.
    assert order.index("b") <= 1, order
    assert slots.in_use == 0


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    slots = FairSlots(1, share=1.0)
    release = asyncio.Event()
    holder = asyncio.create_task(_hold(slots, "a", release))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(_hold(slots, "b", asyncio.Event()))
    await asyncio.sleep(0)
    cancelled.cancel()
    order: list[str] = []
    after = asyncio.create_task(_note(slots, "c", order))
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, after), HANG_GUARD_S)
    assert order == ["c"]
    assert slots.in_use == 0


async def _hold(slots: FairSlots, tenant: str, release: asyncio.Event) -> None:
    async with slots.slot(tenant):
        await release.wait()


async def _note(slots: FairSlots, tenant: str, order: list[str]) -> None:
    async with slots.slot(tenant):
        order.append(tenant)
        await asyncio.sleep(0)


async def test_the_host_key_is_the_address_and_port() -> None:
    async def lookup(host: str, port: int) -> list[str]:
        return {"a.example": ["10.0.0.7"], "b.example": ["10.0.0.7", "10.0.0.5"]}[host]

    resolve = CachedResolve(lookup)
    assert await host_key("http://\uff11\uff12\uff17.0.0.1:81/", resolve) == "127.0.0.1:81"
    assert await host_key("https://a.example/", resolve) == "10.0.0.7:443"
    # Two names of one server share its limit.
    assert await host_key("http://b.example:80/", resolve) == "10.0.0.5:80"
    assert await host_key("http://b.example:80/x", resolve) == await host_key(
        "http://B.EXAMPLE/y", resolve
    )


class Servers:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.slow_entered = asyncio.Event()
        self.slow_started = 0

    async def slow(self, _request: web.Request) -> web.Response:
        self.slow_started += 1
        self.slow_entered.set()
        await self.release.wait()
        return web.Response(text="late")

    async def fast(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Servers, str, str]]:
    state = Servers()
    slow_app, fast_app = web.Application(), web.Application()
    slow_app.router.add_post("/hook", state.slow)
    fast_app.router.add_post("/hook", state.fast)
    async with (
        TestServer(slow_app, host="127.0.0.1") as slow,
        TestServer(fast_app, host="127.0.0.1") as fast,
    ):
        yield state, f"http://127.0.0.1:{slow.port}/hook", f"http://127.0.0.1:{fast.port}/hook"
        state.release.set()


@pytest.mark.parametrize(
    "share",
    [
        0.5,  # the tenant share alone keeps a slot for b
        1.0,  # no share: waiting for the busy host must hold no dispatcher slot
    ],
)
async def test_one_tenants_slow_host_does_not_delay_another_tenants_host(
    servers: tuple[Servers, str, str], share: float
) -> None:
    state, slow_url, fast_url = servers
    allow = Allowlist.parse(("127.0.0.0/8",))
    # Two dispatcher slots; one call at a time per host.
    async with guarded_session(allow, 8) as session:
        slots = FairSlots(2, share)
        http = GuardedHttp(session, allow, HostLimits(1, 0, FakeClock()), slots)
        stuck = [
            asyncio.create_task(http.call("POST", slow_url, b"", {}, 30_000, tenant="a"))
            for _ in range(5)
        ]
        await asyncio.wait_for(state.slow_entered.wait(), HANG_GUARD_S)
        # Four of a's calls wait for the slow host; they must hold no dispatcher slot.
        status = await asyncio.wait_for(
            http.call("POST", fast_url, b"", {}, 30_000, tenant="b"), HANG_GUARD_S
        )
        assert status == 200
        assert state.slow_started == 1
        state.release.set()
        assert await asyncio.wait_for(asyncio.gather(*stuck), HANG_GUARD_S) == [200] * 5
