"""The dev supervisor restarts a role that exits, after its backoff, in its slot."""

from __future__ import annotations

import sys

import pytest

from streams.ops.restarts import Backoff
from streams.ops.supervisor import RoleSpec, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_exited(supervisor: Supervisor, name: str) -> None:
    process = supervisor._slots[name].process
    assert process is not None
    process.wait(10)


def test_an_exited_role_is_restarted_after_its_backoff(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    quits = RoleSpec(
        "quitter",
        {"KRONWHEEL_SLOT": "dev-quitter"},
        "http://127.0.0.1:9/readyz",
        command=[sys.executable, "-c", "import sys; sys.exit(3)"],
    )
    supervisor = Supervisor([quits], clock, Backoff(first_s=1.0, crash_loop_at=2), lambda _u: True)
    supervisor.start_all()
    try:
        wait_exited(supervisor, "quitter")
        clock.now += 0.1
        supervisor.check()
        assert "the quitter exited (exit code 3)" in caplog.text
        assert supervisor.pids() == {}
        assert supervisor.not_ready() == ["quitter"]
        clock.now += 0.5
        supervisor.check()
        assert supervisor.restarts("quitter") == 0  # still backing off
        clock.now += 0.5
        supervisor.check()
        assert supervisor.restarts("quitter") == 1
        wait_exited(supervisor, "quitter")
        clock.now += 0.1
        supervisor.check()
        assert "crash-looping" in caplog.text
        assert "restarting it in 2.0 s" in caplog.text
    finally:
        supervisor.stop_all()
