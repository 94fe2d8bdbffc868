"""Running one firing against its target: HTTP (aiohttp) or Kafka.

Every failure becomes an outcome (status + error text), never an exception:
the dispatcher must record something for every firing it takes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from streams.core.clock import Clock
from streams.core.events import DueTask
from streams.core.model import HttpTarget, KafkaTarget, Outcome
from streams.core.netguard import Allowlist, IPAddress, check_target
from streams.core.signing import compute_signature
from streams.core.timefmt import format_rfc3339_ms
from streams.kafka_io import AsyncProducer

MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: Outcome
    started_at_ms: int
    finished_at_ms: int
    http_status: int | None = None
    error: str | None = None


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


class TargetRunner:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        producer: AsyncProducer,
        clock: Clock,
        allowlist: Allowlist,
        signing_secret: str | None,
    ) -> None:
        self._session = session
        self._producer = producer
        self._clock = clock
        self._allowlist = allowlist
        self._signing_secret = signing_secret

    async def run(self, due: DueTask) -> Attempt:
        started = self._clock.now_ms()
        try:
            if isinstance(due.target, HttpTarget):
                status = await self._http(due, due.target)
                ok = 200 <= status < 300
                return Attempt(
                    Outcome.SUCCEEDED if ok else Outcome.FAILED,
                    started,
                    self._clock.now_ms(),
                    http_status=status,
                    error=None if ok else f"HTTP {status}",
                )
            await self._kafka(due.target)
            return Attempt(Outcome.SUCCEEDED, started, self._clock.now_ms())
        except Exception as exc:  # any failure is an outcome, recorded
            text = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            return Attempt(Outcome.FAILED, started, self._clock.now_ms(), error=text)

    async def _http(self, due: DueTask, target: HttpTarget) -> int:
        host = urlsplit(target.url).hostname or ""
        # Resolve-then-check; pinning the checked address for the connection (so a
        # DNS answer cannot change between check and connect) comes with the
        # dispatcher issue.
        refusal = check_target(host, await _resolve(host), self._allowlist)
        if refusal:
            raise PermissionError(refusal)
        body = target.body.encode() if target.body is not None else b""
        headers = callback_headers(due, body, self._signing_secret, self._clock.now_ms())
        timeout = aiohttp.ClientTimeout(total=target.timeout_ms / 1000)
        async with self._session.request(
            target.method,
            target.url,
            data=body,
            headers=headers,
            timeout=timeout,
            # A redirect could lead to a refused address; targets get no redirects.
            allow_redirects=False,
        ) as response:
            await response.read()
            return response.status

    async def _kafka(self, target: KafkaTarget) -> None:
        await self._producer.produce(
            target.topic,
            target.value.encode() if target.value is not None else None,
            key=target.key.encode() if target.key is not None else None,
        )


async def _resolve(host: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return [ipaddress.ip_address(info[4][0]) for info in infos]
