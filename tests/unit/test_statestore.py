"""The on-disk index of one partition's tasks."""

from __future__ import annotations

from pathlib import Path

from streams.wheel.statestore import PartitionStore


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


def test_a_stale_file_from_a_crash_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "p2.sqlite3"
    first = PartitionStore(path)
    first.put("old", b"state", 1, existed=False)
    first.commit()
    first.close(remove=False)
    assert len(PartitionStore(path)) == 0
    assert PartitionStore(path).get("old") is None
