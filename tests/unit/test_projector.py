"""What the projector makes of consumed records, without a broker: the same records
a processor, a dispatcher or another service writes, passed as plain values."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from streams.config import Settings
from streams.core.events import CommandKind, ExecutionResult, TaskCommand, TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, IntervalSchedule, Outcome, TaskSpec
from streams.core.render import spec_to_json
from streams.kafka.records import (
    dead_letter_for,
    encode_command,
    encode_dead_letter,
    encode_result,
    encode_state,
)
from streams.ports import Projection
from streams.views.readmodel import common
from streams.views.readmodel.admit import apply_each
from streams.views.readmodel.projector import Projector
from streams.views.readmodel.sqlite import SqliteReadModel

SETTINGS = Settings(topic_prefix="p.", bootstrap_servers="unused:9092")
SPEC = TaskSpec(AtSchedule(5_000), HttpTarget("https://example.com/x"), name="n")


@dataclass
class Record:
    topic_name: str
    key_bytes: bytes | None
    value_bytes: bytes | None
    at: int
    part: int = 0

    def topic(self) -> str | None:
        return self.topic_name

    def partition(self) -> int | None:
        return self.part

    def offset(self) -> int | None:
        return self.at

    def key(self) -> bytes | None:
        return self.key_bytes

    def value(self) -> bytes | None:
        return self.value_bytes

    def error(self) -> object | None:
        return None


def test_records_become_one_projection_with_next_offsets(tmp_path: Path) -> None:
    store = SqliteReadModel(tmp_path / "rm.sqlite3")
    projector = Projector(SETTINGS, store)
    create = TaskCommand("c1", "t1", "acme", CommandKind.CREATE, 1, "svc", SPEC)
    pause = TaskCommand("c2", "t1", "acme", CommandKind.PAUSE, 2, "svc")
    state = TaskState("t1", "acme", SPEC, TaskStatus.SCHEDULED, 5_000, None, 0, 1, 1, "c1")
    result = ExecutionResult(
        "t1:5000:1", "t1", "acme", 5_000, 1, Outcome.SUCCEEDED, True, 5_001, 5_002, 1
    )
    refused = Record("p.tasks.commands", b"t1", encode_command(pause), 8)
    records = [
        Record("p.tasks.commands", b"t1", encode_command(create), 7),
        refused,
        Record("p.tasks.state", b"t1", encode_state(state), 3),
        Record("p.tasks.state", b"t1", None, 4),
        Record("p.tasks.results", b"t1", encode_result(result), 0, part=2),
        Record("p.tasks.commands", b"junk", b"\x00garbage", 9),
        Record(
            "p.tasks.dead",
            b"t1",
            encode_dead_letter(dead_letter_for(refused, "PAUSE is not handled", 10)),
            0,
        ),
    ]
    batch = projector._project(records)
    assert [c.command_id for c in batch.commands] == ["c1", "c2"]
    assert batch.states == (("t1", state), ("t1", None))
    assert batch.results == (result,)
    assert batch.rejected == (("t1", "c2", "PAUSE is not handled"),)
    # Offsets move past every record read, garbage included, so none is read twice.
    assert dict(((t, p), o) for t, p, o in batch.offsets) == {
        ("p.tasks.commands", 0): 10,
        ("p.tasks.state", 0): 5,
        ("p.tasks.results", 2): 1,
        ("p.tasks.dead", 0): 1,
    }
    store.apply(projector.name, batch)
    assert store.offsets(projector.name)[("p.tasks.commands", 0)] == 10
    task = store.get_task("acme", "t1")
    assert task is not None
    assert task.status == "completed"
    store.close()


def test_a_record_that_cannot_be_projected_is_skipped_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    store = SqliteReadModel(tmp_path / "rm.sqlite3")
    projector = Projector(SETTINGS, store)
    # What another tool could write: instants no RFC 3339 string can carry.
    huge = TaskSpec(AtSchedule(2**62), HttpTarget("https://example.com/x"))
    bad_state = TaskState("t9", "acme", huge, TaskStatus.SCHEDULED, 2**62, None, 0, 1, 1, "c9")
    bad_command = TaskCommand("c9", "t9", "acme", CommandKind.CREATE, 2**62, "svc", SPEC)
    bad_result = ExecutionResult("t9:1:1", "t9", "acme", 1, 1, Outcome.SUCCEEDED, True, 2, 2**62, 1)
    good = TaskState("t1", "acme", SPEC, TaskStatus.SCHEDULED, 5_000, None, 0, 1, 1, "c1")
    records = [
        Record("p.tasks.state", b"t9", encode_state(bad_state), 0),
        Record("p.tasks.commands", b"t9", encode_command(bad_command), 0),
        Record("p.tasks.results", b"t9", encode_result(bad_result), 0),
        Record("p.tasks.state", b"t1", encode_state(good), 1),
    ]
    batch = projector._project(records)
    assert batch.states == (("t1", good),)
    assert batch.commands == ()
    assert batch.results == ()
    store.apply(projector.name, batch)
    assert store.get_task("acme", "t1") is not None
    assert store.get_task("acme", "t9") is None
    store.close()


class RefusingStore(SqliteReadModel):
    """A store that cannot apply one task's records (as a store error would)."""

    def apply(self, projector: str, batch: Projection) -> None:
        if any(task_id == "t9" for task_id, _ in batch.states):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        super().apply(projector, batch)


def test_a_batch_the_store_refuses_is_applied_record_by_record(tmp_path: Path) -> None:
    store = RefusingStore(tmp_path / "rm.sqlite3")
    good = TaskState("t1", "acme", SPEC, TaskStatus.SCHEDULED, 5_000, None, 0, 1, 1, "c1")
    other = TaskState("t9", "acme", SPEC, TaskStatus.SCHEDULED, 5_000, None, 0, 1, 1, "c9")
    batch = Projection(states=(("t9", other), ("t1", good)), offsets=(("p.tasks.state", 0, 2),))
    apply_each(store, "api-0", batch)
    assert store.get_task("acme", "t1") is not None
    assert store.offsets("api-0")[("p.tasks.state", 0)] == 2
    store.close()


def test_each_projected_state_and_command_is_rendered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checking a record renders nothing: the store's rendering is the one per record."""
    rendered: list[str] = []
    real = spec_to_json

    def counted(spec: TaskSpec) -> dict[str, Any]:
        rendered.append(spec.name)
        return real(spec)

    monkeypatch.setattr(common, "spec_to_json", counted)
    store = SqliteReadModel(tmp_path / "rm.sqlite3")
    projector = Projector(SETTINGS, store)
    state = TaskState("t1", "acme", SPEC, TaskStatus.SCHEDULED, 5_000, None, 0, 1, 1, "c1")
    create = TaskCommand("c1", "t1", "acme", CommandKind.CREATE, 1, "svc", SPEC)
    bad_start = replace(SPEC, schedule=IntervalSchedule(60_000, 2**62))
    bad = replace(state, task_id="t9", spec=bad_start)
    batch = projector._project(
        [
            Record("p.tasks.commands", b"t1", encode_command(create), 0),
            Record("p.tasks.state", b"t1", encode_state(state), 0),
            Record("p.tasks.state", b"t9", encode_state(bad), 1),  # refused: cannot render
        ]
    )
    assert [task_id for task_id, _ in batch.states] == ["t1"]
    store.apply(projector.name, batch)
    assert rendered == ["n", "n"]  # the command's audit entry and the state's row
    store.close()
