"""The read model contract, run over every implementation: SQLite always, Cassandra
when CASSANDRA_CONTACT_POINTS is set or a Docker engine can start one (testcontainers);
neither exists on the development machines, so there it is skipped, saying so.

The projector reads three topics in no fixed order relative to each other, so
each property here is checked across orderings of the same events.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.core.events import CommandKind, ExecutionResult, TaskCommand, TaskState, TaskStatus
from streams.core.model import AtSchedule, HttpTarget, Outcome, TaskSpec
from streams.core.projection import derive_status, spec_changes
from streams.ports import Projection, ReadModel, TaskQuery, TokenRecord
from streams.views.readmodel.sqlite import SqliteReadModel
from tests.support.cassandra import contact_points, drop_keyspace, fresh_keyspace


@pytest.fixture(scope="module")
def cassandra_points() -> Iterator[tuple[str, ...]]:
    yield from contact_points()


SPEC = TaskSpec(AtSchedule(2_000_000), HttpTarget("https://example.com/a"), name="a")


@pytest.fixture(params=["sqlite", "cassandra"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModel]:
    made: tuple[tuple[str, ...], str] | None = None
    if request.param == "sqlite":
        model: ReadModel = SqliteReadModel(tmp_path / "rm.sqlite3")
    else:
        from streams.views.readmodel.cassandra import CassandraReadModel

        points = request.getfixturevalue("cassandra_points")
        # A keyspace per test (the contract tests reuse task ids), dropped after it.
        made = (points, fresh_keyspace(points, "rm"))
        model = CassandraReadModel.connect(points, keyspace=made[1])
    yield model
    model.close()
    if made is not None:
        drop_keyspace(*made)


def state(
    task_id: str,
    tenant: str = "acme",
    status: TaskStatus = TaskStatus.SCHEDULED,
    created: int = 1_000,
    name: str = "a",
) -> TaskState:
    return TaskState(
        task_id,
        tenant,
        TaskSpec(SPEC.schedule, SPEC.target, name=name),
        status,
        2_000_000,
        None,
        0,
        created,
        created,
        "c1",
    )


def result(
    task_id: str, scheduled: int, attempt: int, outcome: Outcome, final: bool, tenant: str = "acme"
) -> ExecutionResult:
    return ExecutionResult(
        f"{task_id}:{scheduled}:{attempt}",
        task_id,
        tenant,
        scheduled,
        attempt,
        outcome,
        final,
        scheduled + 1,
        scheduled + 2,
        1,
    )


def command(
    task_id: str,
    kind: CommandKind,
    command_id: str,
    spec: TaskSpec | None = None,
    tenant: str = "acme",
    issued: int = 1_000,
) -> TaskCommand:
    return TaskCommand(command_id, task_id, tenant, kind, issued, f"{tenant}/ci", spec)


def test_derive_status_table() -> None:
    assert derive_status("SCHEDULED", True, "failed", True) == "scheduled"
    assert derive_status("PAUSED", False, None, False) == "paused"
    assert derive_status(None, False, None, False) == "scheduled"
    assert derive_status("ENDED", True, "succeeded", True) == "cancelled"
    assert derive_status("ENDED", False, "failed", True) == "failed"
    assert derive_status("ENDED", False, "failed", False) == "completed"
    assert derive_status("COMPLETED", False, "succeeded", True) == "completed"
    assert derive_status("CANCELLED", False, None, False) == "cancelled"


def test_spec_changes_name_fields_and_redact_headers() -> None:
    before = {"name": "a", "target": {"http": {"url": "u", "headers": {"Authorization": "s1"}}}}
    after = {"name": "b", "target": {"http": {"url": "u", "headers": {"Authorization": "s2"}}}}
    assert spec_changes(before, after) == (
        {"field": "name", "from": "a", "to": "b"},
        {"field": "target.http.headers.Authorization", "from": "***", "to": "***"},
    )


EVENTS = [
    Projection(states=(("t1", state("t1")),)),
    Projection(states=(("t1", None),)),
    Projection(results=(result("t1", 2_000_000, 1, Outcome.FAILED, True),)),
]


# tasks.state is ordered per task (the tombstone after the state); results interleave freely.
ORDERS = [o for o in itertools.permutations(range(3)) if o.index(0) < o.index(1)]


@pytest.mark.parametrize("order", ORDERS)
def test_any_interleaving_of_topics_gives_the_same_task(
    store: ReadModel, order: tuple[int, ...]
) -> None:
    for i in order:
        store.apply("p", EVENTS[i])
    task = store.get_task("acme", "t1")
    assert task is not None
    assert (task.status, task.last_outcome, task.next_fire_ms) == ("failed", "failed", None)


def test_newest_firing_wins_and_reapplying_changes_nothing(store: ReadModel) -> None:
    older = result("t1", 1_000, 1, Outcome.SUCCEEDED, True)
    newer = result("t1", 2_000, 2, Outcome.FAILED, False)
    batch = Projection(
        states=(("t1", state("t1")),),
        results=(newer, older),
        commands=(command("t1", CommandKind.CREATE, "c1", SPEC),),
        offsets=(("tasks.state", 0, 5),),
    )
    store.apply("p", batch)
    store.apply("p", batch)
    task = store.get_task("acme", "t1")
    assert task is not None
    assert task.last_fire_id == newer.fire_id
    assert len(store.audit("acme", "t1")) == 1
    store.apply("p", Projection(offsets=(("tasks.state", 0, 3),)))
    assert store.offsets("p") == {("tasks.state", 0): 5}, "offsets never go back"


def test_a_task_id_never_changes_tenant(store: ReadModel) -> None:
    store.apply("p", Projection(states=(("t1", state("t1", name="mine")),)))
    store.apply(
        "p",
        Projection(
            states=(("t1", state("t1", tenant="evil", name="stolen")),),
            results=(result("t1", 5_000, 1, Outcome.FAILED, True, tenant="evil"),),
            commands=(command("t1", CommandKind.CANCEL, "x", tenant="evil"),),
        ),
    )
    task = store.get_task("acme", "t1")
    assert task is not None
    assert (task.name, task.last_outcome, task.status) == ("mine", None, "scheduled")
    assert store.get_task("evil", "t1") is None
    assert store.audit("acme", "t1") == []


def test_cancel_and_audit_trail(store: ReadModel) -> None:
    renamed = TaskSpec(SPEC.schedule, SPEC.target, name="b")
    store.apply(
        "p",
        Projection(
            states=(("t1", state("t1")),),
            commands=(
                command("t1", CommandKind.CREATE, "c1", SPEC, issued=1),
                command("t1", CommandKind.UPDATE, "c2", renamed, issued=2),
                command("t1", CommandKind.CANCEL, "c3", issued=3),
            ),
        ),
    )
    store.apply("p", Projection(states=(("t1", None),)))
    task = store.get_task("acme", "t1")
    assert task is not None
    assert task.status == "cancelled"
    trail = store.audit("acme", "t1")
    assert [e.kind for e in trail] == ["CREATE", "UPDATE", "CANCEL"]
    assert trail[1].changes == ({"field": "name", "from": "a", "to": "b"},)
    assert trail[0].issuer == "acme/ci"


def test_list_is_per_tenant_newest_first(store: ReadModel) -> None:
    states = tuple(
        (f"t{i}", state(f"t{i}", tenant="acme" if i % 2 else "globex", created=i, name=f"n{i}"))
        for i in range(6)
    )
    store.apply("p", Projection(states=states))
    acme = store.list_tasks(TaskQuery("acme", limit=10))
    assert [t.task_id for t in acme] == ["t5", "t3", "t1"]
    page = store.list_tasks(TaskQuery("acme", limit=10, before=(3, "t3")))
    assert [t.task_id for t in page] == ["t1"]
    assert [t.task_id for t in store.list_tasks(TaskQuery("acme", text="n3"))] == ["t3"]


def test_tokens_by_hash(store: ReadModel) -> None:
    store.put_token(TokenRecord("h1", "acme", "ci", False, 1))
    assert store.find_token("h1") == TokenRecord("h1", "acme", "ci", False, 1)
    assert store.find_token("h2") is None
