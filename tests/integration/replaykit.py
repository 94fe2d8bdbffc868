"""What the replay tests share: tasks put straight on tasks.commands, waiting on the
history store, and running ``kronwheel replay`` the way an operator does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence

from streams.config import Settings
from streams.core.events import CommandKind, ExecutionResult, TaskCommand
from streams.core.model import AtSchedule, HttpTarget, TaskSpec
from streams.core.timefmt import format_rfc3339_ms
from streams.kafka.records import encode_command
from streams.kafka.topics import COMMANDS
from streams.ports import ExecutionHistory
from tests.support.harness import produce_records


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create_command(task_id: str, at_ms: int, url: str, issued_at_ms: int) -> TaskCommand:
    return TaskCommand(
        command_id=f"create-{task_id}",
        task_id=task_id,
        tenant="ops",
        kind=CommandKind.CREATE,
        issued_at_ms=issued_at_ms,
        issuer="replay-test",
        spec=TaskSpec(AtSchedule(at_ms), HttpTarget(url), name=task_id),
    )


def produce_commands(settings: Settings, commands: Sequence[TaskCommand]) -> None:
    """Keyed by task id, partitioned as any other service's producer would."""
    produce_records(
        settings,
        settings.topic(COMMANDS),
        ((command.task_id.encode(), encode_command(command)) for command in commands),
    )


def executions_by_task(
    store: ExecutionHistory, task_ids: Sequence[str]
) -> dict[str, list[ExecutionResult]]:
    return {task_id: store.executions(task_id) for task_id in task_ids}


def kronwheel(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line against the test's broker and topics; fail on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**os.environ, **settings.to_env()},
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, f"kronwheel {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def iso(epoch_ms: int) -> str:
    return format_rfc3339_ms(epoch_ms)
