"""The on-disk index of one partition's tasks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from streams.wheel.statestore import REUSE_MAX_AGE_MS, PartitionStore

NOW = 1_800_000_000_000


def test_restore_applies_records_in_order_and_tombstones(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p0.sqlite3")
    store.load(
        [
            ("a", 100, b"a1"),
            ("b", 50, b"b1"),
            ("a", 300, b"a2"),  # a later state of a replaces the earlier one
            ("b", None, None),  # b ended
            ("c", None, b"c1"),  # paused: no timer, still a task
        ]
    )
    store.create_due_index()
    assert len(store) == 2
    assert store.get("a") == b"a2"
    assert store.get("b") is None
    assert store.get("c") == b"c1"
    assert list(store.due_before(None, 1_000)) == [("a", 300)]


def test_writes_keep_the_count_and_the_due_order(tmp_path: Path) -> None:
    store = PartitionStore(tmp_path / "p1.sqlite3")
    store.create_due_index()
    store.put("x", b"x", 30, existed=False)
    store.put("y", b"y", 10, existed=False)
    store.put("x", b"x2", 20, existed=True)
    store.commit()
    assert len(store) == 2
    assert list(store.due_before(0, 25)) == [("y", 10), ("x", 20)]
    assert list(store.due_before(15, 25)) == [("x", 20)]
    store.delete("y")
    store.delete("nope")
    assert len(store) == 1
    store.close()
    assert not (tmp_path / "p1.sqlite3").exists()


def test_a_file_without_a_checkpoint_is_not_reused(tmp_path: Path) -> None:
    path = tmp_path / "p2.sqlite3"
    first = PartitionStore(path)
    first.put("old", b"state", 1, existed=False)  # a crash during a rebuild
    first.commit()
    first.close(remove=False)
    again = PartitionStore(path)
    assert again.resume_from(0, 100, NOW) is None
    again.reset()
    assert len(again) == 0
    assert again.get("old") is None


def test_a_checkpointed_file_is_reused_and_caught_up_from_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "p3.sqlite3"
    first = PartitionStore(path)
    first.load([("a", 100, b"a1"), ("b", 200, b"b1")], next_offset=2, now_ms=NOW)
    first.put("c", b"c1", 300, existed=False)  # a step, committed with its offset
    first.save_offset(3, NOW + 1_000)
    first.commit()
    first.close(remove=False)
    again = PartitionStore(path)
    assert again.resume_from(0, 5, NOW + 2_000) == 3
    again.load([("a", None, None), ("d", 400, b"d1")], next_offset=5, now_ms=NOW + 2_000)
    again.create_due_index()
    assert len(again) == 3
    assert list(again.due_before(None, 1_000)) == [("b", 200), ("c", 300), ("d", 400)]


def test_an_uncommitted_step_is_rolled_back_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "p4.sqlite3"
    store = PartitionStore(path)
    store.load([("a", 100, b"a1")], next_offset=1, now_ms=NOW)
    store.put("b", b"b1", 200, existed=False)
    store.delete("a")
    store.save_offset(9, NOW)
    store.rollback()  # the Kafka transaction aborted
    assert (len(store), store.get("a"), store.get("b")) == (1, b"a1", None)
    store.put("c", b"c1", 300, existed=False)
    store.save_offset(2, NOW)
    store.close(remove=False)  # the process died before the step's commit
    again = PartitionStore(path)
    assert again.resume_from(0, 9, NOW) == 1
    assert again.get("c") is None


def test_a_checkpoint_inconsistent_with_the_changelog_or_old_is_not_reused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p5.sqlite3"
    store = PartitionStore(path)
    store.load([("a", 100, b"a1")], next_offset=10, now_ms=NOW)
    store.close(remove=False)
    again = PartitionStore(path)
    assert again.resume_from(0, 10, NOW) == 10
    assert again.resume_from(11, 20, NOW) is None  # the records it needs were deleted
    assert again.resume_from(0, 9, NOW) is None  # the topic is shorter: recreated
    assert again.resume_from(0, 10, NOW + REUSE_MAX_AGE_MS + 1) is None  # too old
    assert again.resume_from(0, 10, NOW - 1) is None  # saved "in the future"


def test_an_unreadable_file_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "p6.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    store = PartitionStore(path)
    assert store.resume_from(0, 10, NOW) is None
    assert len(store) == 0


def test_a_slots_file_in_use_by_another_process_is_not_shared(tmp_path: Path) -> None:
    """A frozen predecessor in the slot holds its file: the successor works apart."""
    path = tmp_path / "p7.sqlite3"
    holder = PartitionStore(path)  # flock is per open file: the same process shows it
    holder.load([("a", 100, b"a1")], next_offset=1, now_ms=NOW)
    holder.put("b", b"b1", 200, existed=False)  # an open write transaction
    successor = PartitionStore(path)
    assert successor.path != path
    assert successor.resume_from(0, 1, NOW) is None
    successor.load([("c", 300, b"c1")], next_offset=1, now_ms=NOW)
    successor.close(remove=False)
    assert not successor.path.exists()  # a private file never outlives its process
    holder.close(remove=False)
    again = PartitionStore(path)
    assert again.path == path
    assert again.resume_from(0, 1, NOW) == 1


def test_a_checkpoint_beyond_the_reported_high_is_reused_only_when_reading_confirms_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p8.sqlite3"
    first = PartitionStore(path)
    first.load([("a", 100, b"a1")], next_offset=10, now_ms=NOW)  # a rebuild's true end
    first.close(remove=False)
    again = PartitionStore(path)
    asked: list[int] = []

    def reaches(answer: bool) -> Callable[[int], bool]:
        def check(offset: int) -> bool:
            asked.append(offset)
            return answer

        return check

    # The dev broker's high, one batch short of the end: verified by reading.
    assert again.resume_from(0, 8, NOW, reaches(True)) == 10
    assert asked == [10]
    # The changelog does not go that far (recreated, truncated): rebuilt.
    assert again.resume_from(0, 8, NOW, reaches(False)) is None
    assert again.resume_from(0, 8, NOW) is None  # nobody can check: rebuilt
    # Within the watermarks nothing is read; too old is rebuilt whatever the read says.
    asked.clear()
    assert again.resume_from(0, 10, NOW, reaches(False)) == 10
    assert again.resume_from(0, 8, NOW + REUSE_MAX_AGE_MS + 1, reaches(True)) is None
    assert again.resume_from(11, 20, NOW, reaches(True)) is None  # deleted records
    assert asked == []
    again.close()
