"""docker-compose.yml is valid (``docker-compose config`` renders it; it needs no
engine) and brings up what production needs: Kafka in KRaft mode, Cassandra,
the one-shot initialisers, two processors, two dispatchers, the API."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = {
    "processor-1": "processor",
    "processor-2": "processor",
    "dispatcher-1": "dispatcher",
    "dispatcher-2": "dispatcher",
    "api": "api",
}


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (scripts/test installs it: test-packages.txt)")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KRONWHEEL_", "COMPOSE_"))}
    return subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    rendered = compose_config(
        KRONWHEEL_API_TOKEN="compose-test-token", GRAFANA_ADMIN_PASSWORD="compose-test"
    )
    assert rendered.returncode == 0, rendered.stderr
    config: dict[str, Any] = yaml.safe_load(rendered.stdout)
    return dict(config["services"])


def test_every_service_is_there(services: dict[str, Any]) -> None:
    expected = {
        "kafka",
        "cassandra",
        "init-topics",
        "init-cassandra",
        "prometheus",
        "grafana",
        *ROLES,
    }
    assert set(services) == expected


def test_kafka_is_the_official_image_in_kraft_mode(services: dict[str, Any]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert not any("zookeeper" in name for name in services)
    assert services["cassandra"]["image"].startswith("cassandra:")


def test_roles_run_kronwheel_against_kafka_and_cassandra(services: dict[str, Any]) -> None:
    slots = set()
    for name, role in ROLES.items():
        service = services[name]
        assert service["command"] == [role]
        assert service["image"] == "kronwheel:latest"
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["CASSANDRA_CONTACT_POINTS"] == "cassandra"
        assert env["KRONWHEEL_LOG_FORMAT"] == "json"
        slots.add(env["KRONWHEEL_SLOT"])
        # Nothing starts before the topics and the keyspace exist.
        assert service["depends_on"] == {
            "init-topics": {"condition": "service_completed_successfully"},
            "init-cassandra": {"condition": "service_completed_successfully"},
        }
        if role != "api":
            assert env["KRONWHEEL_METRICS_PORT"] == "9100"
            assert env["KRONWHEEL_METRICS_HOST"] == "0.0.0.0"
    # Two live processes of a role must never share a slot (it is their transactional id).
    assert len(slots) == len(ROLES)
    assert services["api"]["environment"]["KRONWHEEL_API_TOKEN"] == "compose-test-token"


def test_initialisers_create_topics_and_keyspace(services: dict[str, Any]) -> None:
    topics = services["init-topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["build"]["context"] == str(ROOT)
    assert topics["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    keyspace = services["init-cassandra"]
    assert f"{ROOT}/infra/cassandra:/schema:ro" in keyspace["volumes"]
    assert "cqlsh cassandra 9042 -f" in " ".join(keyspace["command"])
    assert keyspace["depends_on"] == {"cassandra": {"condition": "service_healthy"}}


def test_secrets_must_be_set() -> None:
    no_token = compose_config(GRAFANA_ADMIN_PASSWORD="compose-test")
    assert no_token.returncode != 0
    assert "KRONWHEEL_API_TOKEN" in no_token.stderr
    no_password = compose_config(KRONWHEEL_API_TOKEN="compose-test-token")
    assert no_password.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in no_password.stderr


def test_monitoring_mounts_the_infra_files(services: dict[str, Any]) -> None:
    assert f"{ROOT}/infra/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert f"{ROOT}/infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert f"{ROOT}/infra/grafana:/var/lib/grafana/dashboards:ro" in grafana


def test_dockerfile_ships_what_the_package_needs() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for part in ("streams", "schemas", "infra"):
        assert f"COPY {part} ./{part}" in dockerfile
    assert "USER kronwheel" in dockerfile
    assert 'ENTRYPOINT ["kronwheel"]' in dockerfile
