"""The live hub: what the projector applied, fanned out on the API's event loop.

Two kinds of listeners: WebSocket subscribers of one tenant (they get that
tenant's task, execution and command events, never another's), and requests
with ``?wait=true`` (they wait until the projector has seen the effect of
their command). The projector thread hands each applied batch over with
:meth:`Hub.deliver_threadsafe`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from streams.api.views import execution_view, task_view
from streams.core.events import TaskCommand
from streams.ports import Projection, ReadModel, TaskRecord

# Events one slow WebSocket may have queued before it is told it lagged.
SUBSCRIBER_QUEUE = 1_000
# Task views read per batch for subscribers; a bulk load beyond this sends only
# its executions and commands (the page refreshes its list on those).
MAX_VIEWS_PER_BATCH = 500


@dataclass(eq=False)  # identity: each connection is its own subscriber
class Subscriber:
    tenant: str
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(SUBSCRIBER_QUEUE)
    )
    lagged: bool = False


# What a waiting request learns: None once applied, or why the processor refused it.
Outcome = str | None


@dataclass
class _Waiter:
    command_id: str
    future: asyncio.Future[Outcome]


def _command_event(command: TaskCommand) -> dict[str, Any]:
    return {
        "type": "command",
        "command": {
            "command_id": command.command_id,
            "task_id": command.task_id,
            "kind": command.kind.value.lower(),
            "issuer": command.issuer,
            "issued_at_ms": command.issued_at_ms,
        },
    }


class Hub:
    def __init__(self, store: ReadModel) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)
        self._tenants: frozenset[str] = frozenset()  # read by the projector thread
        self._waiters: dict[str, list[_Waiter]] = defaultdict(list)
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # --- subscribers (event loop) ------------------------------------------------

    def subscribe(self, tenant: str) -> Subscriber:
        subscriber = Subscriber(tenant)
        with self._lock:
            self._subscribers[tenant].add(subscriber)
            self._tenants = frozenset(t for t, subs in self._subscribers.items() if subs)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers[subscriber.tenant].discard(subscriber)
            self._tenants = frozenset(t for t, subs in self._subscribers.items() if subs)

    # --- waiters (event loop) --------------------------------------------------------

    def expect(self, task_id: str, command_id: str) -> asyncio.Future[Outcome]:
        """Register before publishing, so a fast projector cannot slip past the waiter."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiters[task_id].append(_Waiter(command_id, future))
        return future

    def forget(self, task_id: str, future: asyncio.Future[Outcome]) -> None:
        waiters = [w for w in self._waiters.get(task_id, []) if w.future is not future]
        if waiters:
            self._waiters[task_id] = waiters
        else:
            self._waiters.pop(task_id, None)

    # --- delivery ------------------------------------------------------------------------

    def deliver_threadsafe(self, batch: Projection) -> None:
        """Called on the projector thread after ``batch`` was applied to the store."""
        if self._loop is None:
            return
        tenants = self._tenants
        views = self._views(batch, tenants) if tenants else []
        self._loop.call_soon_threadsafe(self._deliver, batch, views, tenants)

    def _views(self, batch: Projection, tenants: frozenset[str]) -> list[TaskRecord]:
        # Tombstones carry no tenant: look the id up under each subscribed tenant;
        # get_task only ever returns a task of the tenant asked about.
        owners: dict[str, str | None] = {}
        for task_id, state in batch.states:
            owners[task_id] = state.tenant if state is not None else None
        for result in batch.results:
            owners.setdefault(result.task_id, result.tenant)
        for command in batch.commands:
            owners.setdefault(command.task_id, command.tenant)
        views: list[TaskRecord] = []
        for task_id, owner in list(owners.items())[:MAX_VIEWS_PER_BATCH]:
            for tenant in [owner] if owner is not None else sorted(tenants):
                if tenant in tenants and (found := self._store.get_task(tenant, task_id)):
                    views.append(found)
        return views

    def _deliver(self, batch: Projection, views: list[TaskRecord], tenants: frozenset[str]) -> None:
        self._resolve_waiters(batch)
        if not tenants:
            return
        for view in views:
            self._send(view.tenant, {"type": "task", "task": task_view(view)})
        for result in batch.results:
            if result.tenant in tenants:
                self._send(
                    result.tenant, {"type": "execution", "execution": execution_view(result)}
                )
        for command in batch.commands:
            if command.tenant in tenants:
                self._send(command.tenant, _command_event(command))

    def _send(self, tenant: str, event: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers.get(tenant, ())):
            self._offer(subscriber, event)

    @staticmethod
    def _offer(subscriber: Subscriber, event: dict[str, Any]) -> None:
        try:
            subscriber.queue.put_nowait(event)
            subscriber.lagged = False
        except asyncio.QueueFull:
            subscriber.lagged = True

    def _resolve_waiters(self, batch: Projection) -> None:
        if not self._waiters:
            return
        for task_id, state in batch.states:
            waiters = self._waiters.get(task_id)
            if not waiters:
                continue
            seen = None if state is None else {state.last_command_id, *state.recent_command_ids}
            for waiter in waiters:
                # A tombstone means every earlier command of the task has been applied.
                if (seen is None or waiter.command_id in seen) and not waiter.future.done():
                    waiter.future.set_result(None)
        for task_id, command_id, reason in batch.rejected:
            for waiter in self._waiters.get(task_id, []):
                if waiter.command_id == command_id and not waiter.future.done():
                    waiter.future.set_result(reason)
