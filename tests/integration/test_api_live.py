"""The API on the real broker with real processes: the projector keeps the read model,
``wait`` reads its own writes, the WebSocket streams one tenant's events and none of
another's, commands from other services are tasks and audited, tokens from the CLI.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from streams.config import Settings
from tests.support.harness import CallbackSink, Pipeline

REPO = Path(__file__).resolve().parents[2]
EVERY_SECOND = {"cron": "* * * * * *", "timezone": "UTC"}


class Api:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any, Any]:
        async with self.session.request(
            method, self.base + path, json=body, headers=self.headers
        ) as response:
            return response.status, await response.json(), response.headers

    async def token_for(self, tenant: str) -> Api:
        status, created, _ = await self.call("POST", "/v1/tokens", {"tenant": tenant})
        assert status == 201, created
        return Api(self.session, self.base, created["token"])

    def stream(self) -> Any:
        return self.session.ws_connect(self.base + "/v1/stream", headers=self.headers)


@pytest.fixture
async def admin(settings: Settings, pipeline: Pipeline) -> AsyncIterator[Api]:
    await asyncio.to_thread(pipeline.start_ready, "processor", "dispatcher", "api")
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{settings.api_port}", settings.api_token or "")


async def next_event(ws: Any, kind: str, task_id: str) -> dict[str, Any]:
    """The next event of a kind about a task; everything received meanwhile is kept."""
    while True:
        event: dict[str, Any] = await asyncio.wait_for(ws.receive_json(), 60)
        ws.seen.append(event)
        body = event.get(kind, {})
        if event["type"] == kind and task_id in (body.get("id"), body.get("task_id")):
            return event


async def test_live_stream_is_per_tenant_and_wait_reads_own_writes(admin: Api) -> None:
    acme, globex = await admin.token_for("acme"), await admin.token_for("globex")
    with CallbackSink() as sink:
        async with acme.stream() as acme_ws, globex.stream() as globex_ws:
            acme_ws.seen, globex_ws.seen = [], []
            status, task, headers = await acme.call(
                "POST",
                "/v1/tasks?wait=true",
                {"name": "tick", "schedule": EVERY_SECOND, "target": {"http": {"url": sink.url}}},
            )
            assert status == 202
            assert headers["Kronwheel-Applied"] == "true"
            # Applied: the read model has it, as the processor scheduled it.
            status, shown, _ = await acme.call("GET", f"/v1/tasks/{task['id']}")
            assert (status, shown["status"]) == (200, "scheduled")
            for _ in range(2):
                execution = await next_event(acme_ws, "execution", task["id"])
                assert execution["execution"]["outcome"] == "succeeded"
            # globex's own task is its marker: events are fanned out in projector
            # order, so anything of acme's would have reached globex before it.
            status, marker, _ = await globex.call(
                "POST",
                "/v1/tasks",
                {"schedule": {"every_ms": 3_600_000}, "target": {"http": {"url": sink.url}}},
            )
            await next_event(globex_ws, "task", marker["id"])
            assert task["id"] not in str(globex_ws.seen)
            assert marker["id"] not in str(acme_ws.seen)
            assert (await globex.call("GET", f"/v1/tasks/{task['id']}"))[0] == 404

            status, _, headers = await acme.call("DELETE", f"/v1/tasks/{task['id']}?wait=true")
            assert (status, headers["Kronwheel-Applied"]) == (202, "true")
            status, shown, _ = await acme.call("GET", f"/v1/tasks/{task['id']}?audit=true")
            assert shown["status"] == "cancelled"
            assert [e["kind"] for e in shown["audit"]] == ["create", "cancel"]
            assert {e["issuer"] for e in shown["audit"]} == {"acme/token"}
            status, runs, _ = await acme.call("GET", f"/v1/tasks/{task['id']}/executions")
            assert len(runs["executions"]) >= 2


async def test_pause_resume_trigger_and_update_through_the_processor(admin: Api) -> None:
    with CallbackSink() as sink:
        # Once a year, so the only firing here is the one triggered.
        yearly = {"cron": "0 0 1 1 *", "timezone": "UTC"}
        spec = {"schedule": yearly, "target": {"http": {"url": sink.url}}}
        _, task, _ = await admin.call("POST", "/v1/tasks?wait=true", spec)
        path = f"/v1/tasks/{task['id']}"
        for action, status in (("pause", "paused"), ("resume", "scheduled")):
            code, shown, headers = await admin.call("POST", f"{path}/{action}?wait_ms=10000")
            assert (code, headers["Kronwheel-Applied"], shown["status"]) == (202, "true", status)
        await admin.call("POST", f"{path}/trigger?wait_ms=10000")
        [callback] = await asyncio.to_thread(sink.wait_for, 1, 30)
        assert callback.headers["Kronwheel-Task-Id"] == task["id"]
        code, shown, headers = await admin.call("PATCH", f"{path}?wait_ms=10000", {"name": "new"})
        assert (headers["Kronwheel-Applied"], shown["name"]) == ("true", "new")
        _, trail, _ = await admin.call("GET", f"{path}/audit")
        assert [e["kind"] for e in trail["audit"]] == [
            "create",
            "pause",
            "resume",
            "trigger",
            "update",
        ]


async def test_commands_from_another_service_are_tasks_with_an_audit_trail(
    admin: Api, settings: Settings
) -> None:
    billing = await admin.token_for("billing")
    produced = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            str(REPO / "examples" / "produce_command.py"),
            "--bootstrap",
            settings.bootstrap_servers or "",
            "--topic",
            settings.topic("tasks.commands"),
            "--tenant",
            "billing",
            "--issuer",
            "billing-service",
            "--url",
            "https://billing.example.com/hook",
            "--cron",
            "0 9 * * MON-FRI",
            "--timezone",
            "Europe/Berlin",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    task_id = produced.stdout.strip()
    async with billing.stream() as ws:
        ws.seen = []
        status, shown, _ = await billing.call("GET", f"/v1/tasks/{task_id}")
        if status == 404:  # not projected yet: its changelog entry is on the way
            await next_event(ws, "task", task_id)
            status, shown, _ = await billing.call("GET", f"/v1/tasks/{task_id}?audit=true")
    status, shown, _ = await billing.call("GET", f"/v1/tasks/{task_id}?audit=true")
    assert (status, shown["status"], shown["schedule"]["timezone"]) == (
        200,
        "scheduled",
        "Europe/Berlin",
    )
    assert [(e["kind"], e["issuer"]) for e in shown["audit"]] == [("create", "billing-service")]
    assert (await admin.call("GET", f"/v1/tasks/{task_id}"))[0] == 404


def test_token_create_on_the_command_line(settings: Settings, pipeline: Pipeline) -> None:
    # Against the running API's data directory (one without a store is refused).
    pipeline.start_ready("api")
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "token",
            "create",
            "--tenant",
            "acme",
            "--name",
            "ci",
        ],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = created.stdout.strip()
    from tests.support.harness import ApiClient

    status, me = ApiClient(f"http://127.0.0.1:{settings.api_port}", token).get("/v1/whoami")
    assert (status, me) == (200, {"tenant": "acme", "name": "ci", "admin": False})
    refused = subprocess.run(
        [sys.executable, "-m", "streams.cli", "token", "create", "--tenant", "Not Valid"],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "invalid tenant" in refused.stderr


async def test_ready_once_the_projector_caught_up_and_metrics_are_open(admin: Api) -> None:
    async with admin.session.get(admin.base + "/readyz") as response:
        body = await response.json()
    while not body["ready"]:  # the projector assigns and drains at start (test timeout bounds it)
        assert body["projector"]["error"] is None or "waiting" in body["projector"]["error"]
        await asyncio.sleep(0.1)
        async with admin.session.get(admin.base + "/readyz") as response:
            body = await response.json()
    assert response.status == 200
    assert body["projector"] == {
        "broker_reachable": True,
        "assigned": True,
        "caught_up": True,
        "polling": True,
        "error": None,
    }
    await admin.call("GET", "/v1/tasks")
    async with admin.session.get(admin.base + "/metrics") as response:  # no token needed
        text = await response.text()
    assert 'kronwheel_api_requests_total{method="GET",route="/v1/tasks",status="200"}' in text
    assert "kronwheel_projector_events_total" in text


async def test_api_stops_cleanly_with_a_stream_open(settings: Settings, pipeline: Pipeline) -> None:
    api = (await asyncio.to_thread(pipeline.start_ready, "api"))["api"]
    async with aiohttp.ClientSession() as session:
        client = Api(session, f"http://127.0.0.1:{settings.api_port}", settings.api_token or "")
        async with client.stream() as ws:
            assert (await ws.receive_json())["type"] == "hello"
            codes = await asyncio.to_thread(pipeline.stop_all)
            assert codes == {f"api:{api.process.pid}": 0}
            closed = await ws.receive()
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
