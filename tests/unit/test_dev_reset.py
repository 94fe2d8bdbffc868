"""``kronwheel dev --reset`` starts from nothing; without it the data directory stays."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.ops.dev import reset_data_dir


def test_reset_deletes_the_data_directory(tmp_path: Path) -> None:
    settings = replace(Settings(), data_dir=tmp_path / "data")
    (settings.data_dir / "state").mkdir(parents=True)
    settings.history_db_path.write_bytes(b"history")
    (settings.data_dir / "kept.sqlite3").write_bytes(b"kept")
    reset_data_dir(settings)
    assert not settings.data_dir.exists()
    reset_data_dir(settings)  # nothing there: nothing to do
