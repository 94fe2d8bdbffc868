"""Shared pieces of the API tests: an in-process app whose read model is fed by the
processor's pure core (what a processor would write), without a broker.

The HTTP layer is what these tests are about; the same paths through the real
broker and real processes are tests/integration/test_api_live.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from aiohttp.test_utils import TestClient, TestServer

from streams.api.app import build_app
from streams.api.auth import issue_token
from streams.api.live import Hub
from streams.config import Settings
from streams.core.clock import FakeClock
from streams.core.events import ExecutionResult, TaskCommand, TaskState
from streams.core.lifecycle import apply_command
from streams.core.model import Outcome
from streams.ingest import CommandPublisher
from streams.ports import Projection
from streams.views.history.sqlite import SqliteHistoryStore
from streams.views.readmodel.sqlite import SqliteReadModel

ADMIN = "admin-t0ken"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class RecordingPublisher:
    """Keeps published commands; ``project`` then plays them through the state machine."""

    def __init__(self) -> None:
        self.commands: list[TaskCommand] = []
        self.published = asyncio.Event()

    async def publish(self, command: TaskCommand) -> None:
        await self.publish_many([command])

    async def publish_many(self, commands: list[TaskCommand]) -> None:
        self.commands.extend(commands)
        self.published.set()


class ApiUnderTest:
    def __init__(self, tmp_path: Path, allowlist: tuple[str, ...] = ()) -> None:
        self.clock = FakeClock()
        self.publisher = RecordingPublisher()
        self.store = SqliteReadModel(tmp_path / "h.sqlite3")
        self.history = SqliteHistoryStore(tmp_path / "h.sqlite3")
        self.hub = Hub(self.store)
        self.tasks: dict[str, TaskState] = {}
        self.projected = 0
        self.settings = Settings(api_token=ADMIN, target_allowlist=allowlist)
        self.app = build_app(
            self.settings,
            self.store,
            self.history,
            cast(CommandPublisher, self.publisher),
            hub=self.hub,
            clock=self.clock,
        )

    def token(self, tenant: str) -> dict[str, str]:
        return bearer(issue_token(self.store, tenant, "test", self.clock.now_ms()))

    def project(self, *results: ExecutionResult) -> Projection:
        """Apply the commands published since the last call, as the processor and the
        projector would, plus the given results; hand the batch to the hub."""
        fresh = self.publisher.commands[self.projected :]
        self.projected = len(self.publisher.commands)
        states: list[tuple[str, TaskState | None]] = []
        for command in fresh:
            transition = apply_command(
                self.tasks.get(command.task_id), command, self.clock.now_ms()
            )
            if not transition.writes:
                continue  # refused, or a duplicate: the processor writes nothing
            states.extend((command.task_id, written) for written in transition.writes)
            if transition.state is None:
                self.tasks.pop(command.task_id, None)
            else:
                self.tasks[command.task_id] = transition.state
        batch = Projection(states=tuple(states), results=results, commands=tuple(fresh))
        self.store.apply("test", batch)
        self.hub.deliver_threadsafe(batch)
        return batch

    def result(
        self, task_id: str, tenant: str, outcome: Outcome, final: bool = True
    ) -> ExecutionResult:
        due = self.clock.now_ms()
        return ExecutionResult(
            f"{task_id}:{due}:1",
            task_id,
            tenant,
            due,
            1,
            outcome,
            final,
            due + 3,
            due + 8,
            3,
            200 if outcome is Outcome.SUCCEEDED else 500,
            None,
            "d1",
        )

    def close(self) -> None:
        self.store.close()
        self.history.close()


@asynccontextmanager
async def running(api: ApiUnderTest) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(api.app)) as client:
        yield client
    api.close()
