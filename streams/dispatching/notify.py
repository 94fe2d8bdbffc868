"""Outcome notifications (a task's ``notify`` webhook), fire-and-forget.

A notification must never block or fail the firing it reports: it runs as a
background task with its own timeout, at most ``max_pending`` at once (more are
dropped and counted), through the same guarded, signed HTTP path as targets.
Tasks are told of a firing's final outcome (succeeded, or failed with no
attempt left); failed attempts that will be retried are not notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from streams.core.clock import Clock
from streams.core.events import DueTask, ExecutionResult
from streams.core.signing import compute_signature
from streams.core.timefmt import format_rfc3339_ms
from streams.dispatching.targets import GuardedHttp
from streams.metrics import NOTIFICATIONS, NotificationResult

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_MS = 5_000
MAX_PENDING = 1_000


def notification_body(due: DueTask, result: ExecutionResult) -> bytes:
    return orjson.dumps(
        {
            "event": "execution",
            "task_id": due.task_id,
            "name": due.name,
            "fire_id": result.fire_id,
            "scheduled_at": format_rfc3339_ms(result.scheduled_at_ms),
            "attempt": result.attempt,
            "outcome": result.outcome.value,
            "final": result.final,
            "http_status": result.http_status,
            "error": result.error,
            "finished_at": format_rfc3339_ms(result.finished_at_ms),
        }
    )


def wants_notification(due: DueTask, result: ExecutionResult) -> bool:
    return due.notify is not None and result.final and result.outcome in due.notify.on


class Notifier:
    def __init__(
        self,
        http: GuardedHttp,
        clock: Clock,
        signing_secret: str | None,
        max_pending: int = MAX_PENDING,
        timeout_ms: int = NOTIFY_TIMEOUT_MS,
    ) -> None:
        self._http = http
        self._clock = clock
        self._signing_secret = signing_secret
        self._max_pending = max_pending
        self._timeout_ms = timeout_ms
        self._pending: set[asyncio.Task[None]] = set()

    def notify(self, due: DueTask, result: ExecutionResult) -> None:
        """Start sending, if the task asked for this outcome; returns at once."""
        if not wants_notification(due, result):
            return
        if len(self._pending) >= self._max_pending:
            NOTIFICATIONS.labels(result=NotificationResult.DROPPED).inc()
            log.warning(
                "notification for %s dropped: %d pending", result.fire_id, self._max_pending
            )
            return
        task = asyncio.create_task(self._send(due, result))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, due: DueTask, result: ExecutionResult) -> None:
        assert due.notify is not None
        body = notification_body(due, result)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": f"notify:{result.fire_id}",
            "Kronwheel-Task-Id": due.task_id,
        }
        if self._signing_secret:
            headers["Kronwheel-Signature"] = compute_signature(
                self._signing_secret, self._clock.now_ms() // 1000, body
            )
        try:
            status = await self._http.call("POST", due.notify.url, body, headers, self._timeout_ms)
        except Exception as exc:  # a notification failure is counted, never raised
            NOTIFICATIONS.labels(result=NotificationResult.FAILED).inc()
            log.warning(
                "notification for %s failed: %s: %s", result.fire_id, type(exc).__name__, exc
            )
            return
        sent = 200 <= status < 300
        NOTIFICATIONS.labels(
            result=NotificationResult.SENT if sent else NotificationResult.FAILED
        ).inc()
        log.info("notification for %s: HTTP %d", result.fire_id, status)

    async def close(self, grace_s: float = 2.0) -> None:
        """Give pending notifications a moment, then cancel what is left."""
        if not self._pending:
            return
        _done, pending = await asyncio.wait(set(self._pending), timeout=grace_s)
        for task in pending:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
