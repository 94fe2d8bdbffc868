"""The REST layer in process: auth, validation, commands, reads from the read model,
tenant isolation on every call, paging, preview, upcoming, audit and the WebSocket."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.core.events import CommandKind
from streams.core.jitter import jitter_offset_ms
from streams.core.lifecycle import fire
from streams.core.model import Outcome
from streams.core.timefmt import format_rfc3339_ms, parse_rfc3339_ms
from streams.ports import Projection
from tests.apitools import ADMIN, ApiUnderTest, bearer, running

Client = TestClient[Any, Any]


@pytest.fixture
def api(tmp_path: Path) -> ApiUnderTest:
    return ApiUnderTest(tmp_path)


@pytest.fixture
async def client(api: ApiUnderTest) -> AsyncIterator[Client]:
    async with running(api) as test_client:
        yield test_client


def body(api: ApiUnderTest, **extra: Any) -> dict[str, Any]:
    return {
        "schedule": {"at": format_rfc3339_ms(api.clock.now_ms() + 60_000)},
        "target": {"http": {"url": "https://example.com/hook"}},
        **extra,
    }


async def create(client: Client, api: ApiUnderTest, headers: dict[str, str], **extra: Any) -> Any:
    response = await client.post("/v1/tasks", json=body(api, **extra), headers=headers)
    assert response.status == 202, await response.text()
    return await response.json()


async def test_every_v1_call_needs_a_valid_token(client: Client) -> None:
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic x"}):
        for method, path in (
            ("GET", "/v1/tasks"),
            ("GET", "/v1/tasks/abc"),
            ("POST", "/v1/tasks"),
            ("GET", "/openapi.json"),
            ("GET", "/v1/stream"),
        ):
            response = await client.request(method, path, headers=headers)
            assert response.status == 401, (method, path)
            assert (await response.json())["error"]["code"] == "unauthorized"
    for public in ("/healthz", "/metrics", "/", "/static/app.js"):
        assert (await client.get(public)).status == 200, public
    page = await client.get("/")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await client.get("/readyz")).status == 503  # no projector in this app


async def test_create_returns_202_with_the_accepted_task(client: Client, api: ApiUnderTest) -> None:
    response = await client.post("/v1/tasks", json=body(api, name="r"), headers=bearer(ADMIN))
    assert response.status == 202
    task = await response.json()
    assert (task["status"], task["tenant"], task["name"]) == ("scheduled", "default", "r")
    assert task["next_fire_at"] == format_rfc3339_ms(api.clock.now_ms() + 60_000)
    assert task["id"].startswith("default.")
    assert response.headers["Kronwheel-Applied"] == "false"
    [command] = api.publisher.commands
    assert (command.kind, command.task_id, command.tenant, command.issuer) == (
        CommandKind.CREATE,
        task["id"],
        "default",
        "default/admin",
    )
    assert response.headers["Kronwheel-Command-Id"] == command.command_id
    # Not in the read model until the projector has seen it...
    assert (await client.get(f"/v1/tasks/{task['id']}", headers=bearer(ADMIN))).status == 404
    api.project()
    shown = await (await client.get(f"/v1/tasks/{task['id']}", headers=bearer(ADMIN))).json()
    assert shown["status"] == "scheduled"
    assert shown["next_fire_at"] == task["next_fire_at"]


async def test_wait_answers_after_the_projector_applied_the_command(
    client: Client, api: ApiUnderTest
) -> None:
    async def project_soon() -> None:
        await api.publisher.published.wait()
        api.project()

    projecting = asyncio.create_task(project_soon())
    response = await client.post(
        "/v1/tasks?wait=true", json=body(api, name="w"), headers=bearer(ADMIN)
    )
    await projecting
    assert response.status == 202
    assert response.headers["Kronwheel-Applied"] == "true"
    # Nothing projects the second one: the wait ends at its bound, honestly.
    response = await client.post("/v1/tasks?wait_ms=1", json=body(api), headers=bearer(ADMIN))
    assert response.headers["Kronwheel-Applied"] == "false"


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"schedule": {"cron": "not a cron"}}, "schedule.cron", "invalid_cron"),
        (
            {"schedule": {"cron": "* * * * *", "timezone": "Mars/Olympus"}},
            "schedule.timezone",
            "unknown_timezone",
        ),
        ({"schedule": {"at": "2020-01-01T00:00:00Z"}}, "schedule.at", "in_past"),
        ({"target": {"ftp": {}}}, "target", "unknown_target_kind"),
        (
            {"target": {"http": {"url": "http://127.0.0.1:9/x"}}},
            "target.http.url",
            "refused_target",
        ),
        (
            {"target": {"http": {"url": "http://169.254.169.254/latest"}}},
            "target.http.url",
            "refused_target",
        ),
        ({"target": {"http": {"url": "http://localhost/x"}}}, "target.http.url", "refused_target"),
        ({"notify": {"url": "http://[::1]/alerts"}}, "notify.url", "refused_target"),
        (
            {"target": {"kafka": {"topic": "tasks.commands"}}},
            "target.kafka.topic",
            "refused_target",
        ),
        (
            {"target": {"http": {"url": "https://e.com", "body": "x" * 70_000}}},
            "target.http.body",
            "payload_too_large",
        ),
        ({"owner": "someone"}, "owner", "unknown_field"),
    ],
)
async def test_invalid_input_is_a_400_naming_the_field(
    client: Client, api: ApiUnderTest, change: dict[str, Any], field: str, code: str
) -> None:
    response = await client.post("/v1/tasks", json={**body(api), **change}, headers=bearer(ADMIN))
    assert response.status == 400
    error = (await response.json())["error"]
    assert (error["field"], error["code"]) == (field, code), error
    assert api.publisher.commands == []


async def test_allowlisted_loopback_is_accepted(tmp_path: Path) -> None:
    api = ApiUnderTest(tmp_path, allowlist=("127.0.0.0/8",))
    async with running(api) as client:
        target = {"http": {"url": "http://127.0.0.1:9/x"}}
        response = await client.post(
            "/v1/tasks", json=body(api, target=target), headers=bearer(ADMIN)
        )
        assert response.status == 202


async def test_bad_json_oversized_body_and_bad_queries(client: Client) -> None:
    response = await client.post("/v1/tasks", data=b"{nope", headers=bearer(ADMIN))
    assert (await response.json())["error"]["code"] == "invalid_json"
    response = await client.post(
        "/v1/tasks", data=io.BytesIO(b"x" * (3 << 20)), headers=bearer(ADMIN)
    )
    assert response.status == 413
    error = (await response.json())["error"]
    assert (error["code"], error["field"]) == ("body_too_large", "body")
    for query, field in (
        ("limit=0", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("status=weird", "status"),
        ("cursor=%%%", "cursor"),
    ):
        response = await client.get(f"/v1/tasks?{query}", headers=bearer(ADMIN))
        assert response.status == 400, query
        assert (await response.json())["error"]["field"] == field


async def test_batch_creates_all_or_names_the_bad_item(client: Client, api: ApiUnderTest) -> None:
    bad = {"tasks": [body(api), {**body(api), "schedule": {"cron": "61 * * * *"}}]}
    response = await client.post("/v1/tasks:batch", json=bad, headers=bearer(ADMIN))
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "tasks[1].schedule.cron"
    assert api.publisher.commands == []
    good = {"tasks": [body(api, name=f"b{i}") for i in range(3)]}
    response = await client.post("/v1/tasks:batch", json=good, headers=bearer(ADMIN))
    assert response.status == 202
    tasks = (await response.json())["tasks"]
    assert [t["name"] for t in tasks] == ["b0", "b1", "b2"]
    assert len({c.task_id for c in api.publisher.commands}) == 3


async def test_dedupe_key_makes_a_create_idempotent_per_tenant(
    client: Client, api: ApiUnderTest
) -> None:
    acme = api.token("acme")
    first = await create(client, api, acme, dedupe_key="order-42")
    again = await create(client, api, acme, dedupe_key="order-42")
    assert first["id"] == again["id"]
    ids = {c.command_id for c in api.publisher.commands}
    assert len(ids) == 1, "a retried create carries the same command id"
    other = await create(client, api, api.token("globex"), dedupe_key="order-42")
    assert other["id"] != first["id"]
    api.project()
    response = await client.post("/v1/tasks", json=body(api, dedupe_key="order-42"), headers=acme)
    assert response.status == 200  # the existing task, nothing published
    assert (await response.json())["id"] == first["id"]
    assert len(api.publisher.commands) == 3


async def test_a_tenant_never_sees_another_tenants_task(client: Client, api: ApiUnderTest) -> None:
    acme, globex = api.token("acme"), api.token("globex")
    task = await create(client, api, acme, name="acme-secret")
    api.project(api.result(task["id"], "acme", Outcome.SUCCEEDED, final=False))
    api.history.record_executions([api.result(task["id"], "acme", Outcome.SUCCEEDED)])
    path = f"/v1/tasks/{task['id']}"
    assert (await client.get(path, headers=acme)).status == 200
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/trigger"),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("GET", "/executions"),
        ("GET", "/upcoming"),
        ("GET", "/audit"),
    ):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method == "PATCH" else {}
        for who in (globex, bearer(ADMIN)):
            response = await client.request(method, path + suffix, headers=who, **kwargs)
            assert response.status == 404, (method, suffix)
    for who in (globex, bearer(ADMIN)):
        listed = await (await client.get("/v1/tasks?name=acme", headers=who)).json()
        assert listed["tasks"] == []
    kinds = [c.kind for c in api.publisher.commands]
    assert kinds == [CommandKind.CREATE], "no command was published for another tenant"


async def test_list_filters_searches_and_pages(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    ids = []
    for i in range(5):
        ids.append((await create(client, api, acme, name=f"report-{i}"))["id"])
        api.project()  # created_at is when the processor applied the create
        api.clock.advance(1)
    await create(client, api, acme, name="cleanup")
    api.project()
    await client.delete(f"/v1/tasks/{ids[0]}", headers=acme)
    api.project()
    seen: list[str] = []
    cursor = ""
    while True:
        page = await (
            await client.get(f"/v1/tasks?name=report&limit=2{cursor}", headers=acme)
        ).json()
        seen.extend(t["id"] for t in page["tasks"])
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == list(reversed(ids)), "newest first, every page, no repeats"
    cancelled = await (await client.get("/v1/tasks?status=cancelled", headers=acme)).json()
    assert [t["id"] for t in cancelled["tasks"]] == [ids[0]]
    live = await (await client.get("/v1/tasks?status=scheduled,paused", headers=acme)).json()
    assert len(live["tasks"]) == 5


async def test_patch_merges_validates_and_is_audited(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    task = await create(client, api, acme, name="old", retry={"max_attempts": 3})
    api.project()
    path = f"/v1/tasks/{task['id']}"
    response = await client.patch(path, json={"schedule": {"cron": "nope"}}, headers=acme)
    assert (await response.json())["error"]["field"] == "schedule.cron"
    response = await client.patch(path, json={"dedupe_key": "x"}, headers=acme)
    assert (await response.json())["error"]["code"] == "immutable"
    response = await client.patch(
        path, json={"name": "new", "retry": {"backoff_ms": 500}}, headers=acme
    )
    assert response.status == 202
    update = api.publisher.commands[-1]
    assert update.kind is CommandKind.UPDATE
    assert update.spec is not None
    assert (update.spec.name, update.spec.retry.max_attempts, update.spec.retry.backoff_ms) == (
        "new",
        3,
        500,
    )
    api.project()
    shown = await (await client.get(f"{path}?audit=true", headers=acme)).json()
    create_entry, update_entry = shown["audit"]
    assert (create_entry["kind"], create_entry["issuer"]) == ("create", "acme/test")
    assert {c["field"]: (c["from"], c["to"]) for c in update_entry["changes"]} == {
        "name": ("old", "new"),
        "retry.backoff_ms": (1000, 500),
    }


async def test_commands_on_tasks(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    task = await create(client, api, acme)
    api.project()
    path = f"/v1/tasks/{task['id']}"
    for suffix, kind in (
        ("/pause", CommandKind.PAUSE),
        ("/resume", CommandKind.RESUME),
        ("/trigger", CommandKind.TRIGGER),
    ):
        response = await client.post(path + suffix, headers=acme)
        assert response.status == 202
        assert api.publisher.commands[-1].kind is kind
    assert (await client.delete(path, headers=acme)).status == 202
    api.project()
    shown = await (await client.get(path, headers=acme)).json()
    assert shown["status"] == "cancelled"
    response = await client.post(path + "/pause", headers=acme)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "task_ended"
    trail = await (await client.get(path + "/audit", headers=acme)).json()
    assert [e["kind"] for e in trail["audit"]] == ["create", "pause", "resume", "trigger", "cancel"]


async def test_status_follows_results(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    task = await create(client, api, acme)
    api.project()
    api.clock.advance(60_000)
    fired = fire(api.tasks[task["id"]], api.clock.now_ms())  # the one-time task fires, ends
    api.store.apply("test", Projection(states=tuple((task["id"], w) for w in fired.writes)))
    api.project(api.result(task["id"], "acme", Outcome.FAILED))
    shown = await (await client.get(f"/v1/tasks/{task['id']}", headers=acme)).json()
    assert shown["status"] == "failed"
    assert shown["last_outcome"]["outcome"] == "failed"
    assert shown["next_fire_at"] is None


async def test_upcoming_shows_nominal_and_jittered_times(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    schedule = {"cron": "0 * * * *", "jitter_ms": 600_000}
    task = await create(client, api, acme, schedule=schedule)
    assert task["schedule"]["jitter_ms"] == 600_000
    api.project()
    url = f"/v1/tasks/{task['id']}/upcoming?n=4"
    upcoming = await (await client.get(url, headers=acme)).json()
    assert upcoming["jitter_ms"] == 600_000
    nominal = [parse_rfc3339_ms(t) for t in upcoming["fire_times"]]
    due = [parse_rfc3339_ms(t) for t in upcoming["due_times"]]
    assert [d - n for n, d in zip(nominal, due, strict=True)] == [
        jitter_offset_ms(task["id"], n, 600_000) for n in nominal
    ]
    assert all(n % 3_600_000 == 0 for n in nominal)
    too_much = {"cron": "*/5 * * * *", "jitter_ms": 300_000}
    response = await client.post("/v1/tasks", json=body(api, schedule=too_much), headers=acme)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "schedule.jitter_ms"


async def test_upcoming_and_preview_come_from_the_core(client: Client, api: ApiUnderTest) -> None:
    acme = api.token("acme")
    cron = {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Berlin"}
    task = await create(client, api, acme, schedule=cron)
    api.project()
    upcoming = await (await client.get(f"/v1/tasks/{task['id']}/upcoming?n=3", headers=acme)).json()
    assert len(upcoming["fire_times"]) == 3
    assert upcoming["due_times"] == upcoming["fire_times"]  # no jitter
    assert upcoming["jitter_ms"] == 0
    preview = await (
        await client.post("/v1/schedules:preview", json={"schedule": cron, "n": 3}, headers=acme)
    ).json()
    assert [f["at"] for f in preview["fire_times"]] == upcoming["fire_times"]
    assert all(f["local"][11:19] == "09:00:00" for f in preview["fire_times"])
    assert preview["timezone"] == "Europe/Berlin"
    response = await client.post(
        "/v1/schedules:preview", json={"schedule": {"cron": "* *"}}, headers=acme
    )
    assert (await response.json())["error"]["field"] == "schedule.cron"


async def test_tokens_only_from_the_admin(client: Client, api: ApiUnderTest) -> None:
    response = await client.post("/v1/tokens", json={"tenant": "acme"}, headers=bearer(ADMIN))
    assert response.status == 201
    token = (await response.json())["token"]
    me = await (await client.get("/v1/whoami", headers=bearer(token))).json()
    assert me == {"tenant": "acme", "name": "token", "admin": False}
    response = await client.post("/v1/tokens", json={"tenant": "evil"}, headers=bearer(token))
    assert response.status == 403
    response = await client.post("/v1/tokens", json={"tenant": "Bad Name"}, headers=bearer(ADMIN))
    assert (await response.json())["error"]["field"] == "tenant"
    # Stored hashed: the token itself is nowhere in the read model.
    assert api.store.find_token(token) is None


async def test_websocket_carries_only_the_callers_tenant(client: Client, api: ApiUnderTest) -> None:
    acme, globex = api.token("acme"), api.token("globex")
    acme_token = acme["Authorization"].split()[1]
    # A browser passes its token as a subprotocol; another tenant uses the header.
    async with (
        client.ws_connect("/v1/stream", protocols=("kronwheel", f"bearer.{acme_token}")) as a,
        client.ws_connect("/v1/stream", headers=globex) as g,
    ):
        assert (await a.receive_json())["tenant"] == "acme"
        assert (await g.receive_json())["tenant"] == "globex"
        mine = await create(client, api, acme, name="mine")
        theirs = await create(client, api, globex, name="theirs")
        api.project(api.result(theirs["id"], "globex", Outcome.SUCCEEDED))
        acme_events = [await a.receive_json() for _ in range(2)]
        globex_events = [await g.receive_json() for _ in range(3)]
    assert {e["type"] for e in acme_events} == {"task", "command"}
    assert all(
        e.get("task", e.get("command", {})).get("id", mine["id"]) == mine["id"]
        for e in acme_events
        if e["type"] == "task"
    )
    assert all(theirs["id"] in str(e) and mine["id"] not in str(e) for e in globex_events)
    assert mine["id"] not in str(globex_events)
    assert theirs["id"] not in str(acme_events)


async def test_a_refused_command_ends_the_wait_with_a_409(
    client: Client, api: ApiUnderTest
) -> None:
    async def refuse_soon() -> None:
        await api.publisher.published.wait()
        command = api.publisher.commands[-1]
        refusal = (command.task_id, command.command_id, "task already exists")
        api.hub.deliver_threadsafe(Projection(rejected=(refusal,)))

    refusing = asyncio.create_task(refuse_soon())
    response = await client.post("/v1/tasks?wait_ms=10000", json=body(api), headers=bearer(ADMIN))
    await refusing
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "rejected"
    assert "task already exists" in error["message"]
