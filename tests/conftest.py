"""Shared fixtures. The broker: KAFKA_BOOTSTRAP_SERVERS when set, else one embedded
Tansu per test session, stopped at the end (and killed with us if we die)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import Settings
from streams.kafka.broker import EmbeddedBroker, free_loopback_port
from streams.kafka.topics import ensure_topics
from streams.ops.dev import dev_session_timeout_ms
from streams.ops.procs import descendants, is_running
from tests.support.cassandra import configured_points, drop_keyspace, fresh_keyspace
from tests.support.harness import Pipeline

ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test run leaves nothing running: fail the run if any child process survived."""
    left = sorted(pid for pid in descendants(os.getpid()) if is_running(pid))
    if left:
        names = [
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120] for pid in left
        ]
        session.config.get_terminal_writer().line(
            f"processes left running by the tests: {list(zip(left, names, strict=True))}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tiers by folder: everything under tests/integration needs a broker.
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if external:
        yield external
        return
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap_servers


@pytest.fixture(scope="session", autouse=True)
def cassandra_keyspace() -> Iterator[str | None]:
    """With CASSANDRA_CONTACT_POINTS set, one keyspace for the session's roles, made as an
    operator would (kronwheel never creates one); processes the tests start (`kronwheel
    dev` included) find it through KRONWHEEL_CASSANDRA_KEYSPACE."""
    points = configured_points()
    if not points:
        yield None
        return
    keyspace = fresh_keyspace(points, "kwtest")
    before = os.environ.get("KRONWHEEL_CASSANDRA_KEYSPACE")
    os.environ["KRONWHEEL_CASSANDRA_KEYSPACE"] = keyspace
    yield keyspace
    drop_keyspace(points, keyspace)
    if before is None:
        os.environ.pop("KRONWHEEL_CASSANDRA_KEYSPACE", None)
    else:
        os.environ["KRONWHEEL_CASSANDRA_KEYSPACE"] = before


@pytest.fixture(scope="session")
def on_dev_broker() -> bool:
    """True when the tests run on the embedded broker, which shows aborted records."""
    return not os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()


@pytest.fixture
def real_kafka(on_dev_broker: bool) -> None:
    """For tests that need Kafka's abort semantics (read_committed hides aborted records)."""
    if on_dev_broker:
        pytest.skip(
            "needs a real Apache Kafka (set KAFKA_BOOTSTRAP_SERVERS): the embedded dev "
            "broker shows aborted transactional records to read_committed readers"
        )


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path: Path, cassandra_keyspace: str | None) -> Settings:
    """Settings for one test: its own topic names, data directory and API port; the
    history store and read model in Cassandra when CASSANDRA_CONTACT_POINTS is set."""
    base = Settings()
    external = bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip())
    if not external:
        base = base.with_embedded_broker(kafka_bootstrap)  # the session's embedded broker
    return replace(
        base,
        cassandra_contact_points=configured_points(),
        cassandra_keyspace=cassandra_keyspace or Settings().cassandra_keyspace,
        bootstrap_servers=kafka_bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        partitions=3,
        data_dir=tmp_path / "data",
        api_port=free_loopback_port(),
        api_token="test-admin-token",
        signing_secret="test-signing-secret",
        target_allowlist=("127.0.0.0/8",),
        # As dev: the dev broker holds group joins for about half the session
        # timeout, so short there; Kafka refuses a session under 6 s.
        session_timeout_ms=dev_session_timeout_ms(embedded=not external),
    )


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    """The test's topics, and role processes it starts; all stopped at the end."""
    ensure_topics(settings)
    running = Pipeline(settings, tmp_path / "logs")
    try:
        yield running
    finally:
        running.stop_all()
