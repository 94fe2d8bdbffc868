"""Issue 12: tokens go where they are meant to, and only there."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.cli import _create_token
from streams.config import Settings
from tests.apitools import ADMIN, ApiUnderTest, running


def test_token_create_refuses_a_data_dir_without_a_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "elsewhere")
    assert _create_token(settings, "acme", "cli") == 2
    assert "--create-store" in capsys.readouterr().err
    assert not settings.history_db_path.exists()


def test_token_create_makes_a_store_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "new")
    assert _create_token(settings, "acme", "cli", create_store=True) == 0
    assert capsys.readouterr().out.strip()
    assert _create_token(settings, "acme", "cli") == 0  # the store exists now


async def test_rest_calls_do_not_take_the_token_from_the_websocket_subprotocol(
    tmp_path: Path,
) -> None:
    api = ApiUnderTest(tmp_path)
    async with running(api) as client:
        protocol = {"Sec-WebSocket-Protocol": f"kronwheel, bearer.{ADMIN}"}
        response = await client.get("/v1/tasks", headers=protocol)
        assert response.status == 401
        response = await client.post("/v1/tasks", json={}, headers=protocol)
        assert response.status == 401
        # The upgrade itself still may.
        async with client.ws_connect(
            "/v1/stream", protocols=("kronwheel", f"bearer.{ADMIN}")
        ) as ws:
            hello = await ws.receive_json()
            assert hello["type"] == "hello"
