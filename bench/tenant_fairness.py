"""How late one tenant's callbacks are while another tenant's target is slow.

In process, on loopback only: tenant A sends SLOW_CALLS callbacks to a host that
answers after SLOW_S; then tenant B sends FAST_CALLS to another host that
answers at once. Measured: B's time from submit to answer, with the
dispatcher's old admission (a global semaphore taken before the per-host slot)
and with fairness.py (host slot first, then the tenant's share).

    python -m bench.tenant_fairness
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from streams.core.clock import SystemClock
from streams.core.netguard import Allowlist
from streams.dispatching.fairness import FairSlots
from streams.dispatching.guard import guarded_session
from streams.dispatching.limits import HostLimits
from streams.dispatching.targets import GuardedHttp

CONCURRENCY = 256
PER_HOST = 32
SLOW_CALLS = 600
SLOW_S = 1.0
FAST_CALLS = 50
ALLOW = Allowlist.parse(("127.0.0.0/8",))


@asynccontextmanager
async def servers() -> AsyncIterator[tuple[str, str]]:
    async def slow(_request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_S)
        return web.Response(text="late")

    async def fast(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    slow_app, fast_app = web.Application(), web.Application()
    slow_app.router.add_post("/hook", slow)
    fast_app.router.add_post("/hook", fast)
    async with (
        TestServer(slow_app, host="127.0.0.1") as s,
        TestServer(fast_app, host="127.0.0.1") as f,
    ):
        yield f"http://127.0.0.1:{s.port}/hook", f"http://127.0.0.1:{f.port}/hook"


async def run(fair: bool) -> list[float]:
    async with servers() as (slow_url, fast_url), guarded_session(ALLOW, CONCURRENCY) as session:
        limits = HostLimits(PER_HOST, 0, SystemClock())
        http = GuardedHttp(session, ALLOW, limits, FairSlots(CONCURRENCY) if fair else None)
        old_gate = asyncio.Semaphore(CONCURRENCY)

        def submit(url: str, tenant: str) -> Callable[[], Coroutine[Any, Any, int]]:
            async def one() -> int:
                if fair:
                    return await http.call("POST", url, b"", {}, 60_000, tenant=tenant)
                async with old_gate:  # the old dispatcher: a global slot, then the host's
                    return await http.call("POST", url, b"", {}, 60_000)

            return one

        slow = [asyncio.create_task(submit(slow_url, "a")()) for _ in range(SLOW_CALLS)]
        await asyncio.sleep(0.2)  # a's calls are in flight and queued

        async def timed() -> float:
            started = time.perf_counter()
            await submit(fast_url, "b")()
            return time.perf_counter() - started

        waits = await asyncio.gather(*(timed() for _ in range(FAST_CALLS)))
        await asyncio.gather(*slow)
        return list(waits)


def main() -> None:
    for fair in (False, True):
        waits = sorted(asyncio.run(run(fair)))
        label = "fair (host slot, then tenant share)" if fair else "old (global slot first)"
        p50_ms = statistics.median(waits) * 1000
        print(
            f"{label}: tenant b's {FAST_CALLS} callbacks, p50 {p50_ms:.0f} ms,"
            f" max {waits[-1] * 1000:.0f} ms (tenant a: {SLOW_CALLS} x {SLOW_S:.0f} s on one host)"
        )


if __name__ == "__main__":
    main()
