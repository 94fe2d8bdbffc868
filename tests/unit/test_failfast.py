"""Issue 12: with the broker gone, a create answers 503 with Retry-After within the
API producer's bounded timeout, instead of hanging for librdkafka's 300 s default."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.api.failfast import (
    PRODUCE_TIMEOUT_MS,
    BrokerUnavailableError,
    api_producer_config,
    published,
)
from streams.api.keys import PUBLISHER
from streams.config import Settings
from streams.core.events import TaskCommand
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.ingest import CommandPublisher, create_command
from streams.kafka.broker import free_loopback_port
from streams.kafka.clients import AsyncProducer
from tests.apitools import ADMIN, ApiUnderTest, bearer, running


def test_the_api_producer_gives_up_within_seconds() -> None:
    config = api_producer_config(Settings(bootstrap_servers="127.0.0.1:1"))
    assert config["message.timeout.ms"] == PRODUCE_TIMEOUT_MS <= 10_000


class BrokerGone:
    async def publish_many(self, commands: list[TaskCommand]) -> None:
        raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT))


async def test_a_publish_the_broker_cannot_take_is_a_503_with_retry_after(tmp_path: Path) -> None:
    api = ApiUnderTest(tmp_path)
    api.app[PUBLISHER] = cast(CommandPublisher, BrokerGone())
    async with running(api) as client:
        body = {
            "schedule": {"at": "2030-01-01T00:00:00Z"},
            "target": {"http": {"url": "https://example.com/hook"}},
        }
        response = await client.post("/v1/tasks", json=body, headers=bearer(ADMIN))
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"]["code"] == "broker_unavailable"


async def test_a_real_producer_with_no_broker_fails_instead_of_hanging() -> None:
    # Nothing listens on this loopback port: the record can never be delivered.
    settings = Settings(bootstrap_servers=f"127.0.0.1:{free_loopback_port()}")
    producer = AsyncProducer(api_producer_config(settings, timeout_ms=300))
    publisher = CommandPublisher(settings, producer)
    spec = TaskSpec(AtSchedule(1_900_000_000_000), HttpTarget("https://example.com/"))
    command = create_command(spec, tenant="acme", issuer="t", now_ms=1_800_000_000_000)
    try:
        with pytest.raises(BrokerUnavailableError):
            await published(publisher.publish_many([command]), backstop_s=30)
    finally:
        producer.close(timeout_s=0)
