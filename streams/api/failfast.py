"""The API fails fast when the broker is gone: a bounded produce, then a 503.

librdkafka keeps an undelivered record for ``message.timeout.ms`` (300 s by
default) while it retries; a client waiting that long for a 202 has long
given up, and every waiting request holds memory. The API's producer gives up
after PRODUCE_TIMEOUT_MS instead, and the request answers 503 with
``Retry-After``. The command may still have reached the broker (the broker
can take a record and lose the acknowledgement), so a client retrying a
create should send a ``dedupe_key``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from confluent_kafka import KafkaException

from streams.api.errors import ApiError
from streams.config import Settings, producer_config

PRODUCE_TIMEOUT_MS = 5_000
RETRY_AFTER_S = 5
# librdkafka's own timeout ends the wait; this is the backstop if its callback never comes.
_BACKSTOP_S = PRODUCE_TIMEOUT_MS / 1000 + 2


def api_producer_config(settings: Settings, timeout_ms: int = PRODUCE_TIMEOUT_MS) -> dict[str, Any]:
    return producer_config(
        settings,
        "api",
        **{
            "message.timeout.ms": timeout_ms,
            "request.timeout.ms": min(timeout_ms, 30_000),
            "socket.connection.setup.timeout.ms": max(1_000, min(timeout_ms, 30_000)),
        },
    )


class BrokerUnavailableError(ApiError):
    def __init__(self, detail: str) -> None:
        super().__init__(503, "broker_unavailable", f"the command could not be published: {detail}")
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


async def published(delivery: Awaitable[None], backstop_s: float = _BACKSTOP_S) -> None:
    """Wait for a publish; a broker that cannot take it is a 503 with Retry-After."""
    try:
        await asyncio.wait_for(delivery, backstop_s)
    except KafkaException as exc:
        raise BrokerUnavailableError(str(exc.args[0] if exc.args else exc)) from None
    except TimeoutError:
        raise BrokerUnavailableError(f"no answer from the broker in {backstop_s:.0f} s") from None
