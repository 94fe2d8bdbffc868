"""The REST layer: auth, validation errors, the 202 answer and reads.

The publisher here is an in-memory recorder, because these tests are about
HTTP handling; the same path through the real broker is
tests/integration/test_end_to_end.py.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from streams.api.app import build_app
from streams.config import Settings
from streams.core.clock import FakeClock
from streams.core.events import CommandKind, ExecutionResult, TaskCommand
from streams.core.model import Outcome
from streams.core.timefmt import format_rfc3339_ms
from streams.history.sqlite import SqliteHistoryStore
from streams.ingest import CommandPublisher

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class RecordingPublisher:
    def __init__(self) -> None:
        self.commands: list[TaskCommand] = []

    async def publish(self, command: TaskCommand) -> None:
        self.commands.append(command)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def store(tmp_path: Path) -> SqliteHistoryStore:
    return SqliteHistoryStore(tmp_path / "h.sqlite3")


@pytest.fixture
async def client(
    clock: FakeClock, publisher: RecordingPublisher, store: SqliteHistoryStore
) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(
        Settings(api_token=TOKEN), store, cast(CommandPublisher, publisher), clock=clock
    )
    async with TestClient(TestServer(app)) as test_client:
        yield test_client
    store.close()


def task_body(clock: FakeClock) -> dict[str, Any]:
    return {
        "schedule": {"at": format_rfc3339_ms(clock.now_ms() + 60_000)},
        "target": {"http": {"url": "https://example.com/hook"}},
    }


async def test_every_v1_call_needs_the_token(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await client.get("/v1/tasks/abc", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
    assert (await client.get("/healthz")).status == 200


async def test_create_returns_202_and_publishes_one_command(
    client: TestClient[Any, Any], clock: FakeClock, publisher: RecordingPublisher
) -> None:
    response = await client.post("/v1/tasks", json=task_body(clock), headers=AUTH)
    assert response.status == 202
    task = await response.json()
    assert task["status"] == "scheduled"
    assert task["next_fire_at"] == format_rfc3339_ms(clock.now_ms() + 60_000)
    [command] = publisher.commands
    assert (command.kind, command.task_id) == (CommandKind.CREATE, task["id"])

    response = await client.get(f"/v1/tasks/{task['id']}", headers=AUTH)
    assert response.status == 200
    assert (await response.json())["id"] == task["id"]


async def test_invalid_body_is_a_400_naming_the_field(
    client: TestClient[Any, Any], clock: FakeClock, publisher: RecordingPublisher
) -> None:
    body = task_body(clock)
    body["schedule"] = {"cron": "not a cron"}
    response = await client.post("/v1/tasks", json=body, headers=AUTH)
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("invalid_cron", "schedule.cron")
    response = await client.post("/v1/tasks", data=b"{nope", headers=AUTH)
    assert (await response.json())["error"]["code"] == "invalid_json"
    assert publisher.commands == []


async def test_oversized_request_is_a_413(client: TestClient[Any, Any]) -> None:
    response = await client.post("/v1/tasks", data=io.BytesIO(b"x" * (2 << 20)), headers=AUTH)
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"


async def test_unknown_task_is_a_404(client: TestClient[Any, Any]) -> None:
    for path in ("/v1/tasks/nope", "/v1/tasks/nope/executions", "/v1/tasks/bad%20id"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


async def test_executions_newest_first_and_completed_status(
    client: TestClient[Any, Any], clock: FakeClock, store: SqliteHistoryStore
) -> None:
    task = await (await client.post("/v1/tasks", json=task_body(clock), headers=AUTH)).json()
    due = clock.now_ms() + 60_000
    store.record_executions(
        [
            ExecutionResult(
                f"{task['id']}:{due}:1",
                task["id"],
                "default",
                due,
                1,
                Outcome.SUCCEEDED,
                True,
                due + 3,
                due + 8,
                3,
                200,
                None,
                "d1",
            ),
        ]
    )
    shown = await (await client.get(f"/v1/tasks/{task['id']}", headers=AUTH)).json()
    assert shown["status"] == "completed"
    assert shown["last_outcome"]["outcome"] == "succeeded"
    runs = await (await client.get(f"/v1/tasks/{task['id']}/executions", headers=AUTH)).json()
    assert [(r["outcome"], r["http_status"], r["lateness_ms"]) for r in runs["executions"]] == [
        ("succeeded", 200, 3)
    ]
