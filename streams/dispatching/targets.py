"""Running one firing against its target: HTTP (aiohttp) or Kafka.

Every failure becomes an outcome (status + error text), never an exception:
the dispatcher must record something for every firing it takes. HTTP calls
go through the dispatcher's one guarded session (streams.dispatching.guard),
so the address connected to is the address checked; no redirects are
followed (a redirect could point anywhere).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext

import aiohttp
import yarl

from streams.core.attempts import Attempt
from streams.core.clock import Clock
from streams.core.events import DueTask
from streams.core.model import HttpTarget, KafkaTarget, Outcome
from streams.core.netguard import Allowlist, host_of
from streams.core.signing import compute_signature
from streams.core.timefmt import format_rfc3339_ms
from streams.dispatching.fairness import FairSlots, Resolve, host_key
from streams.dispatching.guard import TargetRefused, literal_refusal, refusal_in
from streams.dispatching.limits import HostLimits
from streams.kafka.clients import AsyncProducer

MAX_ERROR_CHARS = 500
# A target's answer is not used; read a little of it so small answers keep the
# connection reusable, and never buffer a huge one.
MAX_RESPONSE_BYTES = 64 * 1024

__all__ = ["Attempt", "GuardedHttp", "TargetRunner", "callback_headers"]


def callback_headers(
    due: DueTask, body: bytes, signing_secret: str | None, now_ms: int
) -> dict[str, str]:
    """The contract's callback headers, on top of the task's own."""
    assert isinstance(due.target, HttpTarget)
    headers = dict(due.target.headers)
    headers["Idempotency-Key"] = due.fire_id
    headers["Kronwheel-Task-Id"] = due.task_id
    headers["Kronwheel-Scheduled-At"] = format_rfc3339_ms(due.scheduled_at_ms)
    headers["Kronwheel-Attempt"] = str(due.attempt)
    if signing_secret:
        headers["Kronwheel-Signature"] = compute_signature(signing_secret, now_ms // 1000, body)
    return headers


class GuardedHttp:
    """HTTP calls under the SSRF guard and per-host limits (targets and notifications)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        allowlist: Allowlist,
        limits: HostLimits,
        slots: FairSlots | None = None,
        resolve: Resolve | None = None,
    ) -> None:
        self._session = session
        self._allowlist = allowlist
        self._limits = limits
        self._slots = slots
        self._resolve = resolve

    def tenant_slot(self, tenant: str | None) -> AbstractAsyncContextManager[None]:
        """One of the dispatcher's slots, shared fairly between tenants (none: no limit)."""
        if self._slots is None or tenant is None:
            return nullcontext()
        return self._slots.slot(tenant)

    async def call(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout_ms: int,
        tenant: str | None = None,
        on_start: Callable[[], None] | None = None,
    ) -> int:
        """The response status; raises TargetRefused or the client's error.
        ``on_start`` runs once the slots are held, as the request goes out.

        The URL is parsed once, here, and that parsed URL is what the session
        connects to: the literal check sees the host after the IDNA mapping the
        client applies (a full-width ``127.0.0.1`` is loopback), and a name goes
        to the guarded resolver. No second parse can disagree with the check.
        """
        parsed = yarl.URL(url)
        refusal = literal_refusal(host_of(parsed), self._allowlist)
        if refusal:
            raise TargetRefused(refusal)
        # The host's slot first, then the tenant's: waiting for a busy host must
        # not hold a slot another tenant's unrelated host could use.
        async with (
            self._limits.slot(await host_key(parsed, self._resolve)),
            self.tenant_slot(tenant),
        ):
            if on_start is not None:
                on_start()
            try:
                async with self._session.request(
                    method,
                    parsed,
                    data=body,
                    headers=dict(headers),
                    timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000),
                    allow_redirects=False,
                ) as response:
                    await response.content.read(MAX_RESPONSE_BYTES)
                    return response.status
            except aiohttp.ClientConnectorError as exc:
                refused = refusal_in(exc)
                if refused is not None:
                    raise refused from exc
                raise


class TargetRunner:
    def __init__(
        self,
        http: GuardedHttp,
        producer: AsyncProducer,
        clock: Clock,
        signing_secret: str | None,
    ) -> None:
        self._http = http
        self._producer = producer
        self._clock = clock
        self._signing_secret = signing_secret

    async def run(self, due: DueTask) -> Attempt:
        # The call's start is stamped once the host's and the tenant's slots are
        # held: the wait for them is queue time (the dispatcher measures it apart),
        # not the target's. Before, a sub-millisecond local sink showed 131 ms calls.
        started = self._clock.now_ms()

        def call_starts() -> None:
            nonlocal started
            started = self._clock.now_ms()

        try:
            if isinstance(due.target, HttpTarget):
                status = await self._call_http(due, due.target, call_starts)
                ok = 200 <= status < 300
                return Attempt(
                    Outcome.SUCCEEDED if ok else Outcome.FAILED,
                    started,
                    self._clock.now_ms(),
                    http_status=status,
                    error=None if ok else f"HTTP {status}",
                )
            async with self._http.tenant_slot(due.tenant):
                call_starts()
                await self._publish(due.target)
            return Attempt(Outcome.SUCCEEDED, started, self._clock.now_ms())
        except TargetRefused as exc:
            return Attempt(Outcome.FAILED, started, self._clock.now_ms(), error=str(exc))
        except Exception as exc:  # any failure is an outcome, recorded
            text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            if isinstance(exc, TimeoutError):
                text = f"timed out after {getattr(due.target, 'timeout_ms', 0)} ms"
            return Attempt(Outcome.FAILED, started, self._clock.now_ms(), error=text)

    async def _call_http(
        self, due: DueTask, target: HttpTarget, on_start: Callable[[], None]
    ) -> int:
        body = target.body.encode() if target.body is not None else b""
        headers = callback_headers(due, body, self._signing_secret, self._clock.now_ms())
        return await self._http.call(
            target.method,
            target.url,
            body,
            headers,
            target.timeout_ms,
            tenant=due.tenant,
            on_start=on_start,
        )

    async def _publish(self, target: KafkaTarget) -> None:
        # A plain idempotent producer, not the dispatcher's transaction: a target's
        # record must stay published even if the dispatcher's transaction aborts
        # (the outcome is already in the history store and will not run again).
        await self._producer.produce(
            target.topic,
            target.value.encode() if target.value is not None else None,
            key=target.key.encode() if target.key is not None else None,
        )
