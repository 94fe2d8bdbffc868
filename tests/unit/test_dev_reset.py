"""``kronwheel dev --reset`` starts from nothing; one dev per data directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from streams.config import Settings
from streams.ops.dev import DataDirInUse, dev_holds, lock_data_dir, reset_data_dir
from streams.ops.replay.state import refuse_while_processors_run


def test_reset_empties_the_data_directory_but_keeps_its_lock(tmp_path: Path) -> None:
    settings = replace(Settings(), data_dir=tmp_path / "data")
    (settings.data_dir / "state").mkdir(parents=True)
    settings.history_db_path.write_bytes(b"history")
    (settings.data_dir / "kept.sqlite3").write_bytes(b"kept")
    lock = lock_data_dir(settings.data_dir)
    try:
        reset_data_dir(settings)
        assert [p.name for p in settings.data_dir.iterdir()] == ["dev.lock"]
        with pytest.raises(DataDirInUse):  # still held through the reset
            lock_data_dir(settings.data_dir)
    finally:
        lock.close()
    reset_data_dir(replace(settings, data_dir=tmp_path / "none"))  # nothing there: nothing to do


def test_one_dev_per_data_directory(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path / "data")
    try:
        with pytest.raises(DataDirInUse, match="another kronwheel dev"):
            lock_data_dir(tmp_path / "data")
    finally:
        held.close()
    lock_data_dir(tmp_path / "data").close()  # free again once the first one ends


def test_a_tool_sees_dev_running_by_its_data_directory_lock(tmp_path: Path) -> None:
    # Static assignment leaves dev's processor in no group; replay state asks this.
    assert not dev_holds(tmp_path)
    held = lock_data_dir(tmp_path)
    try:
        assert dev_holds(tmp_path)
        with pytest.raises(SystemExit, match="kronwheel dev is running"):
            refuse_while_processors_run(Settings(data_dir=tmp_path))
    finally:
        held.close()
    assert not dev_holds(tmp_path)
