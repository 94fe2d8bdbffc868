"""Fuzzing the REST body (issue 12): POST /v1/tasks never answers 500, and every body
it accepts was published as a command that decodes and passes the shared validation."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.kafka.records import decode_command, encode_command
from tests.apitools import ADMIN, ApiUnderTest, bearer, running

EXAMPLES = int(os.environ.get("KRONWHEEL_FUZZ_EXAMPLES", "100"))
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
ANY_JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
INSTANTS = st.sampled_from(
    [
        "2030-01-01T00:00:00Z",
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "2030-W01-1T00:00:00Z",
        "20300101T000000Z",
        "2030-01-01T00:00:00",
        "2030-02-30T00:00:00Z",
        "2030-01-01T00:00:00.123456789+05:30",
    ]
)
SCHEDULES = st.one_of(
    st.fixed_dictionaries({"at": st.one_of(INSTANTS, ANY_JSON)}),
    st.fixed_dictionaries(
        {"cron": st.sampled_from(["0 0 30 2 *", "0 0 0 31 4 *", "* * * * *", "x"])},
        optional={"timezone": st.sampled_from(["UTC", "Nowhere/Else", ""])},
    ),
    st.fixed_dictionaries(
        {"every_ms": st.one_of(st.integers(-5, 2**64), ANY_JSON)},
        optional={"start": INSTANTS, "end": INSTANTS},
    ),
    ANY_JSON,
)
URLS = st.one_of(
    st.sampled_from(
        [
            "https://example.com/hook",
            "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",
            "http://127\u30020\u30020\u30021/",
            "http://[::1/",
            "http://example.com/a b",
            "http://0x7f.1/",
            "http://exa\u00admple.com/",
        ]
    ),
    st.text(max_size=40),
)
HEADERS = st.dictionaries(
    st.one_of(
        st.sampled_from(["Transfer-Encoding", "X-A: b", "X-Ok", "Connection"]), st.text(max_size=10)
    ),
    st.one_of(st.text(max_size=10), ANY_JSON),
    max_size=3,
)
TARGETS = st.one_of(
    st.fixed_dictionaries(
        {
            "http": st.fixed_dictionaries(
                {"url": URLS},
                optional={
                    "method": st.sampled_from(["GET", "post", "TRACE"]),
                    "headers": HEADERS,
                    "timeout_ms": st.one_of(st.integers(-5, 10**6), ANY_JSON),
                    "body": st.text(max_size=20),
                },
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "kafka": st.fixed_dictionaries(
                {
                    "topic": st.one_of(
                        st.sampled_from(["out", "tasks.state", "__consumer_offsets", ".."]),
                        st.text(max_size=20),
                    )
                }
            )
        }
    ),
    ANY_JSON,
)
BODIES = st.one_of(
    st.fixed_dictionaries(
        {"schedule": SCHEDULES, "target": TARGETS},
        optional={
            "retry": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "max_attempts": st.integers(-2, 2**40),
                        "backoff_ms": st.integers(-5, 2**40),
                        "max_backoff_ms": st.integers(-5, 2**40),
                    },
                ),
                ANY_JSON,
            ),
            "notify": st.one_of(st.fixed_dictionaries({"url": URLS}), ANY_JSON),
            "name": st.one_of(st.text(max_size=20), ANY_JSON),
            "misfire": st.sampled_from(["skip", "fire_all", "never"]),
        },
    ),
    ANY_JSON,
)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=BODIES)
async def test_no_rest_body_gets_a_500(tmp_path: Path, body: Any) -> None:
    api = ApiUnderTest(tmp_path / str(abs(hash(repr(body)))))
    client: TestClient[Any, Any]
    async with running(api) as client:
        response = await client.post("/v1/tasks", json=body, headers=bearer(ADMIN))
        assert response.status != 500, await response.text()
        assert response.status in (200, 202, 400), await response.text()
        if response.status == 202:
            [command] = api.publisher.commands
            decode_command(encode_command(command))  # decodes and passes the shared rules
        else:
            assert api.publisher.commands == []
