"""Issue 12 at the REST edge: what a hostile client sent is a 4xx naming the field,
and nothing is published for it (the answer is computed before the publish)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streams.core.timefmt import format_rfc3339_ms
from tests.apitools import ADMIN, ApiUnderTest, bearer, running

Client = TestClient[Any, Any]
# 127.0.0.1 spelled so that only IDNA / UTS-46 mapping turns it into the loopback address.
LOOPBACK_SPELLINGS = [
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # full-width digits
    "127\u30020\u30020\u30021",  # ideographic full stops
    "\u2460\u2461\u2466.0.0.\u2460",  # circled digits
    "127\uff0e0\uff0e0\uff0e1",  # full-width full stops
]


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


async def refused(client: Client, api: ApiUnderTest, payload: Any) -> dict[str, Any]:
    response = await client.post("/v1/tasks", json=payload, headers=bearer(ADMIN))
    error: dict[str, Any] = (await response.json())["error"]
    assert response.status == 400, error
    assert api.publisher.commands == [], "nothing is published for a refused request"
    return error


@pytest.mark.parametrize("cron", ["0 0 30 2 *", "0 0 0 31 4 *"])
async def test_a_cron_that_never_fires_is_a_400_not_a_published_500(
    client: Client, api: ApiUnderTest, cron: str
) -> None:
    error = await refused(client, api, body(api, schedule={"cron": cron}))
    assert (error["field"], error["code"]) == ("schedule.cron", "never_fires")
    response = await client.post(
        "/v1/schedules:preview", json={"schedule": {"cron": cron}}, headers=bearer(ADMIN)
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "never_fires"


async def test_patch_to_a_cron_that_never_fires_is_a_400(client: Client, api: ApiUnderTest) -> None:
    response = await client.post("/v1/tasks", json=body(api), headers=bearer(ADMIN))
    task = await response.json()
    api.project()
    published = len(api.publisher.commands)
    response = await client.patch(
        f"/v1/tasks/{task['id']}", json={"schedule": {"cron": "0 0 30 2 *"}}, headers=bearer(ADMIN)
    )
    assert response.status == 400
    assert len(api.publisher.commands) == published


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"at": "9999-12-31T23:59:59-23:59"}, "schedule.at"),
        ({"every_ms": 60_000, "start": "0001-01-01T00:00:00+01:00"}, "schedule.start"),
        ({"every_ms": 60_000, "end": "9999-12-31T23:59:59-23:59"}, "schedule.end"),
        ({"at": "2030-W01-1T00:00:00Z"}, "schedule.at"),
        ({"at": "20300101T000000Z"}, "schedule.at"),
    ],
)
async def test_instants_outside_rfc3339_or_1970_to_9999_are_400s(
    client: Client, api: ApiUnderTest, schedule: dict[str, Any], field: str
) -> None:
    error = await refused(client, api, body(api, schedule=schedule))
    assert (error["field"], error["code"]) == (field, "invalid_time")


async def test_a_huge_interval_preview_stops_at_year_9999(
    client: Client, api: ApiUnderTest
) -> None:
    schedule = {"every_ms": 366 * 86_400_000, "start": "9998-06-01T00:00:00Z"}
    response = await client.post(
        "/v1/schedules:preview", json={"schedule": schedule, "n": 5}, headers=bearer(ADMIN)
    )
    assert response.status == 200
    assert len((await response.json())["fire_times"]) == 2


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
@pytest.mark.parametrize("where", ["target", "notify"])
async def test_unicode_spellings_of_loopback_are_refused(
    client: Client, api: ApiUnderTest, host: str, where: str
) -> None:
    url = f"http://{host}:9/hook"
    payload = (
        body(api, target={"http": {"url": url}})
        if where == "target"
        else body(api, notify={"url": url})
    )
    error = await refused(client, api, payload)
    assert error["code"] == "refused_target"
    assert error["field"] == ("target.http.url" if where == "target" else "notify.url")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"Transfer-Encoding": "chunked"}, "reserved_header"),
        ({"Connection": "close"}, "reserved_header"),
        ({"X-A: injected": "1"}, "invalid_header"),
    ],
)
async def test_smuggling_headers_are_refused(
    client: Client, api: ApiUnderTest, headers: dict[str, str], code: str
) -> None:
    target = {"http": {"url": "https://example.com/", "headers": headers}}
    assert (await refused(client, api, body(api, target=target)))["code"] == code


@pytest.mark.parametrize("topic", ["tasks.state", "__consumer_offsets", "__transaction_state"])
async def test_kafka_targets_cannot_write_internal_topics(
    client: Client, api: ApiUnderTest, topic: str
) -> None:
    error = await refused(client, api, body(api, target={"kafka": {"topic": topic}}))
    assert error["field"] == "target.kafka.topic"
