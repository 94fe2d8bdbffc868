"""The dispatcher's outbound side as the real process builds it from the settings:
the target runner and the notifier, over one guarded HTTP session (SSRF guard,
per-host limits) and an idempotent producer for Kafka targets. Tests pass their
own runner and notifier to the Dispatcher instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from streams.config import Settings, producer_config
from streams.core.clock import Clock
from streams.core.netguard import Allowlist
from streams.dispatching.fairness import FairSlots, address_lookup
from streams.dispatching.guard import guarded_session
from streams.dispatching.limits import HostLimits
from streams.dispatching.notify import Notifier
from streams.dispatching.targets import GuardedHttp, TargetRunner
from streams.kafka.clients import AsyncProducer


@contextlib.asynccontextmanager
async def open_targets(
    settings: Settings, clock: Clock
) -> AsyncIterator[tuple[TargetRunner, Notifier]]:
    """The dispatcher's real target runner and notifier: one guarded HTTP session
    (SSRF guard, per-host limits) and an idempotent producer for Kafka targets."""
    target_producer = AsyncProducer(producer_config(settings, "dispatcher-targets"))
    allowlist = Allowlist.parse(settings.target_allowlist)
    session = guarded_session(allowlist, settings.dispatch_concurrency)
    try:
        limits = HostLimits(
            settings.dispatch_per_host_concurrency, settings.dispatch_per_host_rate, clock
        )
        # Admission: the host's slot, then the tenant's share (dispatching/fairness.py).
        slots = FairSlots(settings.dispatch_concurrency)
        http = GuardedHttp(session, allowlist, limits, slots, address_lookup())
        yield (
            TargetRunner(http, target_producer, clock, settings.signing_secret),
            Notifier(http, clock, settings.signing_secret),
        )
    finally:
        await session.close()
        await asyncio.to_thread(target_producer.close)
